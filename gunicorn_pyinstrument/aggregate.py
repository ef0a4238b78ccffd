"""Combining profiles, in time linear in the samples.

pyinstrument's ``Session.combine`` copies both record lists on every call, so folding N sessions
with it is quadratic. Here sessions are concatenated once (:func:`merge_sessions`), or summed per
distinct call stack (:class:`StackAggregate`), which keeps a long window's memory bounded by the
number of distinct stacks the code has rather than by how long it ran.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyinstrument.session import Session


def worker_root(pid: int) -> str:
    """One root frame for everything a worker ran, whatever thread or greenlet ran it (gevent
    names every greenlet as a thread of its own, which would give a root per greenlet)."""
    return f"Worker {pid}\x00<thread>\x00{pid}"


def _new_session(records: list[Any], sessions: Sequence[Session], **fields: Any) -> Session:
    from pyinstrument.session import Session

    prefixes: set[str] = set()
    paths: list[str] = []
    for session in sessions:
        prefixes.update(session.sys_prefixes)
        paths.extend(p for p in session.sys_path if p not in paths)
    return Session(
        frame_records=records,
        sys_path=paths or list(sys.path),
        sys_prefixes=sorted(prefixes) or Session.current_sys_prefixes(),
        **fields,
    )


def merge_sessions(sessions: Iterable[Session], description: str | None = None) -> Session:
    """All the sessions' samples in one Session (one pass; the inputs are not changed)."""
    ordered = sorted(sessions, key=lambda s: s.start_time)
    if not ordered:
        raise ValueError("nothing to merge")
    return _new_session(
        list(chain.from_iterable(s.frame_records for s in ordered)),
        ordered,
        start_time=ordered[0].start_time,
        duration=sum(s.duration for s in ordered),
        min_interval=min(s.min_interval for s in ordered),
        max_interval=max(s.max_interval for s in ordered),
        sample_count=sum(s.sample_count for s in ordered),
        # Renderers trim the tree's stem down to where profiling started; it must not be empty.
        start_call_stack=list(ordered[0].start_call_stack) or ["[merged]"],
        target_description=description or f"{len(ordered)} profiles merged",
        cpu_time=sum(s.cpu_time or 0 for s in ordered),
    )


class StackAggregate:
    """Seconds per distinct call stack, with every stack's root replaced by ``root``.

    Frames are kept without their current-line attribute (pyinstrument's call tree merges frames
    that differ only by it anyway), and each distinct frame string is stored once: a window's
    memory is then the distinct stacks, not the samples that made them.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self.times: dict[tuple[str, ...], float] = {}
        self.samples = 0
        self.min_interval = float("inf")
        self.max_interval = 0.0
        self._frames: dict[str, str] = {}  # frame as sampled -> the one shared copy, line dropped
        self._sys_path: list[str] = []
        self._sys_prefixes: list[str] = []

    def _frame(self, raw: str) -> str:
        frame = self._frames.get(raw)
        if frame is None:
            head, sep, attributes = raw.partition("\x01")
            if sep:
                kept = [a for a in attributes.split("\x01") if not a.startswith("l")]
                head = "\x01".join([head, *kept])
            frame = self._frames.setdefault(raw, self._frames.get(head, head))
            self._frames.setdefault(head, frame)
        return frame

    def add(self, session: Session) -> None:
        times = self.times
        frames = self._frames
        frame_of = self._frame
        root = (self.root,)
        for stack, seconds in session.frame_records:
            key = root + tuple(frames.get(f) or frame_of(f) for f in stack[1:])
            times[key] = times.get(key, 0.0) + seconds
        self.samples += session.sample_count
        self.min_interval = min(self.min_interval, session.min_interval)
        self.max_interval = max(self.max_interval, session.max_interval)
        if not self._sys_path:
            self._sys_path = list(session.sys_path)
            self._sys_prefixes = list(session.sys_prefixes)

    def to_session(self, start_time: float, duration: float, description: str) -> Session:
        from pyinstrument.session import Session

        return Session(
            frame_records=[(list(stack), seconds) for stack, seconds in self.times.items()],
            start_time=start_time,
            duration=duration,
            min_interval=self.min_interval if self.samples else 0.001,
            max_interval=self.max_interval if self.samples else 0.001,
            sample_count=self.samples,
            start_call_stack=[self.root],
            target_description=description,
            cpu_time=0.0,
            sys_path=self._sys_path or list(sys.path),
            sys_prefixes=self._sys_prefixes or Session.current_sys_prefixes(),
        )
