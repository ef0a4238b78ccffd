"""gevent: the time a request's greenlet spends switched out, shown where it switched out.

pyinstrument's strict mode records that time as ``[out-of-context]``, under whichever greenlet
noticed the switch. While a profiled greenlet lives, a ``greenlet.settrace`` callback notes its
stack each time it switches out (a socket read, ``gevent.sleep``, a driver call waiting on the
hub), and :meth:`SwitchLog.finish` puts each ``[out-of-context]`` record at the latest of those
stacks, as ``... > recv > [await]``. The callback is installed only while a profiled greenlet
lives, and passes every event on to a tracer that was there before.

The sampler engine needs no hook: a greenlet that is switched out keeps its stack in
``gr_frame``, which the sampler reads directly (``sampler.py``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from .frames import stack_of, thread_root

AWAIT = "[await]"
OUT_OF_CONTEXT = "[out-of-context]"

_lock = threading.Lock()
_logs: dict[Any, SwitchLog] = {}  # profiled greenlet -> its log
_previous: Any = None
_installed = False


def _trace(event: str, args: Any) -> None:
    if event in ("switch", "throw"):
        # Called in the greenlet switched to, after the switch: the one that left keeps its stack
        # in gr_frame.
        log = _logs.get(args[0])
        if log is not None:
            log.entries.append((time.perf_counter(), stack_of(args[0].gr_frame, log.root)))
    if _previous is not None:
        _previous(event, args)


class SwitchLog:
    """The stacks one profiled greenlet switched out from, with when."""

    def __init__(self, glet: Any, root: str) -> None:
        self.greenlet = glet
        self.root = root
        self.entries: list[tuple[float, list[str]]] = []

    @classmethod
    def start(cls) -> SwitchLog:
        """Log the calling greenlet's switches until :meth:`finish` or :meth:`close`."""
        global _previous, _installed
        import greenlet

        log = cls(greenlet.getcurrent(), thread_root(threading.get_ident()))
        with _lock:
            _logs[log.greenlet] = log
            if not _installed:
                _previous = greenlet.settrace(_trace)
                _installed = True
        return log

    def close(self) -> None:
        global _previous, _installed
        with _lock:
            _logs.pop(self.greenlet, None)
            if _installed and not _logs:
                import greenlet

                greenlet.settrace(_previous)
                _previous = None
                _installed = False

    def finish(self, records: list[tuple[list[str], float]], t0: float) -> list[tuple[list[str], float]]:
        """Each ``[out-of-context]`` record, laid end to end from ``t0``, put at the stack of the
        latest switch-out before it ended, under the request's own root. Times are unchanged."""
        self.close()
        entries = self.entries
        own_root = next((stack[0] for stack, _ in records if stack and stack[-1] != OUT_OF_CONTEXT), None)
        placed: list[tuple[list[str], float]] = []
        t = t0
        i = -1
        for stack, seconds in records:
            t += seconds
            if not stack or stack[-1] != OUT_OF_CONTEXT:
                placed.append((stack, seconds))
                continue
            while i + 1 < len(entries) and entries[i + 1][0] <= t:
                i += 1
            if i < 0:
                placed.append((stack, seconds))  # nothing logged yet: left to collapse to the root
                continue
            where = list(entries[i][1])
            if own_root is not None:
                where[0] = own_root
            placed.append(([*where, AWAIT], seconds))
        return placed
