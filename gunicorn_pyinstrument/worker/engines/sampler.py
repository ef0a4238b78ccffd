"""The sampler engine: stacks read from a background thread, at the interval, for a few percent of CPU.

pyinstrument's profiler runs a hook on every Python call of the thread it profiles (about x3 on
Python-heavy code). This engine instead wakes every ``interval`` in a thread of its own, reads the
current frame of each thread that is serving a profiled request (``sys._current_frames()``), and
records that stack weighted by the wall-clock time since the previous sample: requests run at full
speed and the cost is one stack walk per sample. The result is a genuine pyinstrument Session, so
every renderer, the writer and the merge work unchanged.

Trade-offs, against the pyinstrument engine: functions shorter than the interval are seen only
statistically; time is wall-clock (a thread waiting on I/O or for the GIL is charged to the
function it waits in); and each sample is attributed to the request its *thread* serves, so worker
classes that run many requests on one thread (gevent, asyncio) are not supported per request.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyinstrument.session import Session

_PACKAGE = __name__.rsplit(".", 2)[0]
_HAS_QUALNAME = sys.version_info >= (3, 11)


def frame_identifier(frame: FrameType) -> str:
    """pyinstrument's frame identifier: name, file, first line, then the class and current line."""
    code = frame.f_code
    identifier = f"{code.co_name}\x00{code.co_filename}\x00{code.co_firstlineno}"
    if _HAS_QUALNAME:
        owner, _, _ = code.co_qualname.rpartition(".")
        if owner and not owner.endswith(">"):  # not "<locals>" or "<lambda>"
            identifier += f"\x01c{owner}"
    if frame.f_lineno is not None:
        identifier += f"\x01l{frame.f_lineno}"
    return identifier


#: Identifiers by (code, instruction offset): a sample then costs a dict lookup per frame, not a
#: string build (formatting was most of the sampler's own CPU). The offset, not the line, is the key
#: because ``f_lineno`` decodes the line table on every read (half the cost of a walk, measured);
#: offsets on the same line share one string through ``_BY_LINE``. Both bounded: cleared together
#: when the first grows past the limit.
_IDENTIFIERS: dict[tuple[Any, int], str] = {}
_BY_LINE: dict[tuple[Any, int | None], str] = {}
_IDENTIFIERS_LIMIT = 50_000


def _identifier_miss(frame: FrameType, key: tuple[Any, int]) -> str:
    if len(_IDENTIFIERS) >= _IDENTIFIERS_LIMIT:
        _IDENTIFIERS.clear()
        _BY_LINE.clear()
    line_key = (frame.f_code, frame.f_lineno)
    identifier = _BY_LINE.get(line_key)
    if identifier is None:
        identifier = _BY_LINE[line_key] = frame_identifier(frame)
    _IDENTIFIERS[key] = identifier
    return identifier


def cached_identifier(frame: FrameType) -> str:
    """One frame's identifier through the cache (``stack_of`` inlines the same lookup, per frame)."""
    key = (frame.f_code, frame.f_lasti)
    return _IDENTIFIERS.get(key) or _identifier_miss(frame, key)


def stack_of(frame: FrameType | None, root: str) -> list[str]:
    """The identifiers of ``frame`` and its callers, outermost first, under ``root``."""
    stack: list[str] = []
    append = stack.append
    known = _IDENTIFIERS.get
    while frame is not None:
        key = (frame.f_code, frame.f_lasti)
        append(known(key) or _identifier_miss(frame, key))
        frame = frame.f_back
    stack.append(root)
    stack.reverse()
    return stack


def thread_root(ident: int) -> str:
    thread = threading._active.get(ident)  # type: ignore[attr-defined]
    name = thread.name if thread is not None else f"Thread-{ident}"
    return f"{name}\x00<thread>\x00{ident}"


@dataclass
class Capture:
    """What is being recorded for one thread (a request), or for every thread (``ident`` None)."""

    ident: int | None
    description: str
    start_call_stack: list[str]
    started_at: float = field(default_factory=time.time)
    t0: float = field(default_factory=time.perf_counter)
    last: dict[int, float] = field(default_factory=dict)
    records: list[tuple[list[str], float]] = field(default_factory=list)


def _original(module: str, name: str) -> Any:
    """The real OS-thread primitive, even where gevent has monkey-patched it: the sampler runs in
    a thread of its own while the worker's threads (or greenlets) run Python."""
    try:
        from gevent import monkey

        return monkey.get_original(module, name)
    except ImportError:
        return getattr(__import__(module), name)


#: With no capture for this long, the sampler thread stops waking until the next one starts.
IDLE_PARK_SECONDS = 1.0


class SamplerEngine:
    """No lock on the paths that requests take, nor around a sample. With several request threads
    (gthread), the GIL can be taken from the sampler in the middle of a sample: a lock held across
    it made every request that started or ended meanwhile queue behind the sampler (measured: a
    sample of 70 us of CPU then took 1.5-4 ms of wall-clock time, and the workers 6-7 % more CPU per
    request). Each dict and list operation used here is atomic under the GIL, and stop() returns a
    copy of the records, so a sample that lands after stop() changes nothing that was returned."""

    sees_every_thread = True

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._captures: dict[int, Capture] = {}  # by id(capture)
        allocate_lock = _original("_thread", "allocate_lock")
        self._start_lock = allocate_lock()  # only around starting the sampler thread, once
        # Released when a capture is registered: with nothing to record for a while, the sampler
        # thread sleeps on it instead of waking (and taking the GIL) every interval.
        self._wake = allocate_lock()
        self._wake.acquire()
        self._sleep = _original("time", "sleep")
        self._thread: Any = None

    # --- the Engine interface ---

    def start(self, description: str) -> Capture:
        """Record the calling thread until stop()."""
        ident = threading.get_ident()
        caller = sys._getframe(1)
        while caller.f_back is not None and caller.f_globals.get("__name__", "").startswith(_PACKAGE):
            caller = caller.f_back
        capture = Capture(ident, description, stack_of(caller, thread_root(ident)))
        capture.last[ident] = capture.t0
        self._register(capture)
        return capture

    def start_worker(self, description: str) -> Capture:
        """Record every thread of the process (but the sampler's) until stop(): per-worker mode."""
        capture = Capture(None, description, ["[all threads]"])
        self._register(capture)
        return capture

    def stop(self, handle: Any) -> Session:
        capture: Capture = handle
        self._captures.pop(id(capture), None)
        # A copy: a sample already under way may still append to the capture's own list. Taken
        # before the clock is read, so no sample in it ends after the session does.
        records = list(capture.records)
        return self._session(capture, records, time.perf_counter())

    def discard(self, handle: Any) -> None:
        self._captures.pop(id(handle), None)

    # --- sampling ---

    def _register(self, capture: Capture) -> None:
        self._captures[id(capture)] = capture
        if self._wake.locked():
            with contextlib.suppress(RuntimeError):  # another thread released it first
                self._wake.release()
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    # Started on first use, in the worker: never in the master, never before a fork.
                    self._thread = _original("_thread", "start_new_thread")(self._run, ())

    def _run(self) -> None:
        me = threading.get_ident()
        clock = time.perf_counter
        deadline = clock()
        idle_since: float | None = None
        while True:
            if self._captures:
                idle_since = None
            elif idle_since is None:
                idle_since = clock()
            elif clock() - idle_since >= IDLE_PARK_SECONDS:
                self._park()
                idle_since = None
                deadline = clock()
            # Sleep until the next deadline rather than a full interval after the last sample, so
            # the time a sample takes (and waiting for the GIL) does not lower the rate.
            deadline += self.interval
            delay = deadline - clock()
            if delay > 0:
                self._sleep(delay)
            else:
                deadline = clock()  # fell behind (a busy machine): carry on, no burst to catch up
            if self._captures:
                # A frame that vanishes mid-walk only costs this sample.
                with contextlib.suppress(Exception):
                    self.sample(exclude=me)

    def _park(self) -> None:
        """Block until a capture is registered. Only after IDLE_PARK_SECONDS without one: under
        load the gaps between requests are short, and a sampler woken by every request's start
        would ask for the GIL in the middle of that request (measured: about 5 % of a sync worker's
        throughput, against about 2 % when it keeps its own pace through the gaps)."""
        self._wake.acquire(False)  # forget a release that came while the sampler was not parked
        if not self._captures:
            self._wake.acquire()

    def sample(self, exclude: int | None = None) -> None:
        """Take one sample of every capture (the sampler thread calls this every interval)."""
        captures = list(self._captures.values())
        if not captures:
            return
        frames = sys._current_frames()
        now = time.perf_counter()
        roots: dict[int, str] = {}
        for capture in captures:
            if capture.ident is not None:
                idents: list[int] = [capture.ident]
            else:
                idents = [i for i in frames if i != exclude]
            for ident in idents:
                frame = frames.get(ident)
                if frame is None:
                    continue
                root = roots.get(ident) or roots.setdefault(ident, thread_root(ident))
                # A sample stands for the wall-clock time since the previous one (the sampler may
                # wake late when the machine or the GIL is busy: the time still counts).
                previous = capture.last.get(ident, capture.t0)
                capture.last[ident] = now
                capture.records.append((stack_of(frame, root), now - previous))

    def _session(self, capture: Capture, records: list[tuple[list[str], float]], now: float) -> Session:
        from pyinstrument.session import Session

        duration = now - capture.t0
        if capture.ident is not None and records:
            # The stretch since the last sample belongs to where the thread was last seen: the
            # weights then add up to the duration exactly, whatever sample raced with stop().
            stack, seconds = records[-1]
            records[-1] = (stack, max(seconds, seconds + duration - sum(w for _, w in records)))
        return Session(
            frame_records=records,
            start_time=capture.started_at,
            duration=duration,
            min_interval=self.interval,
            max_interval=self.interval,
            sample_count=len(records),
            start_call_stack=capture.start_call_stack,
            target_description=capture.description,
            cpu_time=0.0,
            sys_path=list(sys.path),
            sys_prefixes=Session.current_sys_prefixes(),
        )
