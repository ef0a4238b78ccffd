"""The sampler engine's rule: where one request is at one tick, and how the tick's time is shared.

A request can be in several places at once: its own thread (or, on an event loop, its task when
the loop runs it), and each pool thread working a job it handed over (``handover.py``). These are
its *lanes*. At every tick:

1. jobs that ended since the previous tick are charged their last stretch exactly, from the
   job's own clock readings, so a job shorter than the interval still shows, and one that ends
   as the sampler wakes is not charged to the wait for it;
2. the lanes that are working are found; a lane only blocked waiting (a thread in
   ``Future.result`` for its own job) is dropped when another lane works;
3. with no lane left, the request is awaiting: its coroutine's await chain, or its greenlet's
   stack where it switched out, then ``[await]``;
4. the tick's time is shared equally by the lanes, so the records add up to the request's
   duration and nothing is counted twice.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, ClassVar

from .frames import cached_identifier, stack_of, stack_until, thread_root
from .handover import Job

AWAIT = "[await]"
#: Where a thread only waits for its own job, by the ids of their code objects (functions of the
#: standard library, alive for good): a code object is hashed afresh on every set lookup.
_WAITS = frozenset(
    id(code)
    for code in (
        threading.Condition.wait.__code__,
        threading.Event.wait.__code__,
        concurrent.futures.Future.result.__code__,
        concurrent.futures.wait.__code__,
    )
)


class Capture:
    """What is recorded for one request, or for every thread of the worker (``ident`` None).

    Built for every sampled request, most of which are then dropped as shorter than MIN_DURATION,
    so building one is on the request path: a class with slots, and the stack the request was
    started from (``start_call_stack``) is only walked when a session is made, from ``caller``."""

    __slots__ = (
        "_start_call_stack",
        "active",
        "caller",
        "coroutine",
        "cpu0",
        "description",
        "finished",
        "frames",
        "greenlet",
        "handed_over",
        "ident",
        "jobs",
        "last",
        "prefix",
        "process0",
        "records",
        "root",
        "started_at",
        "t0",
        "ticks",
    )

    wants_handover_stack: ClassVar[bool] = True

    def __init__(
        self,
        ident: int | None,
        description: str,
        caller: FrameType | None = None,
        start_call_stack: list[str] | None = None,
    ) -> None:
        self.ident = ident
        self.description = description
        # The frame start() was called from (gunicorn's request handler): kept, not walked, until a
        # session is made; dropped then, or when the capture is discarded, so that its locals are
        # not kept alive by a capture something still holds.
        self.caller = caller
        self._start_call_stack = start_call_stack
        self.coroutine: Any = None  # a request on an event loop: the app's coroutine, for its await chain
        self.prefix: list[str] = []  # ... and the stack down to where it is awaited
        self.greenlet: Any = None  # a request on a greenlet
        self.root: str | None = None  # the thread's root identifier, once known
        self.started_at = time.time()
        self.t0 = time.perf_counter()
        self.cpu0 = 0.0  # the sampler thread's CPU seconds at the start (SamplerEngine.start)
        self.process0 = 0.0  # the worker's CPU seconds at the start
        self.ticks = 0  # ticks of the sampler that saw this capture
        self.last: dict[int, float] = {}
        self.records: list[tuple[list[str], float]] = []
        self.active = True
        self.jobs: dict[int, Job] = {}  # running, by id
        self.finished: list[Job] = []  # ended since the previous tick
        self.frames: list[FrameType] = []  # on the loop's stack: the request runs
        self.handed_over = False  # work went to a pool: its patched entry points are in the stacks

    def thread_root(self) -> str:
        root = self.root
        if root is None:
            root = self.root = thread_root(self.ident or 0)
        return root

    @property
    def start_call_stack(self) -> list[str]:
        stack = self._start_call_stack
        if stack is None:
            stack = self._start_call_stack = stack_of(self.caller, self.thread_root())
            self.caller = None
        return stack

    def job_started(self, job: Job) -> None:
        self.handed_over = True
        self.jobs[id(job)] = job

    def job_finished(self, job: Job) -> None:
        self.jobs.pop(id(job), None)
        self.finished.append(job)


def tick(capture: Capture, frames: dict[int, FrameType], now: float, loop_stack: Callable[[], Any]) -> None:
    """One sample of one request's capture; ``loop_stack()`` gives its thread's stack and the
    captures running on it (computed once per loop and tick)."""
    ident = capture.ident
    assert ident is not None
    capture.ticks += 1
    previous = capture.last.get(ident, capture.t0)
    capture.last[ident] = now
    dt = now - previous
    if capture.finished:
        dt = _charge_finished(capture, previous, dt)
    working: list[list[str]] = []
    waiting: list[list[str]] = []
    if capture.coroutine is not None:
        stack, running = loop_stack()
        if capture in running:
            working.append(stack)
    elif capture.greenlet is not None:
        gr_frame = capture.greenlet.gr_frame
        if gr_frame is None:  # running: its frames are its thread's
            working.append(stack_of(frames.get(ident), capture.thread_root()))
        else:
            waiting.append([*stack_of(gr_frame, capture.thread_root()), AWAIT])
    else:
        frame = frames.get(ident)
        if frame is not None:
            stack = stack_of(frame, capture.thread_root())
            (waiting if id(frame.f_code) in _WAITS else working).append(stack)
    for job in list(capture.jobs.values()):
        frame = frames.get(job.ident)
        own = stack_until(frame, job.frame) if frame is not None and job.frame is not None else None
        if own is None:  # the pool thread has moved on to other work already
            continue
        job.last_stack = job.handover + own
        (waiting if frame is not None and id(frame.f_code) in _WAITS else working).append(job.last_stack)
    lanes = working or waiting
    if not lanes:
        lanes = [capture.prefix + await_chain(capture.coroutine) + [AWAIT]]
    if dt <= 0:
        return
    share = dt / len(lanes)
    capture.records.extend((stack, share) for stack in lanes)


def _charge_finished(capture: Capture, previous: float, dt: float) -> float:
    done, capture.finished = capture.finished, []
    for job in done:
        share = min(job.t1 - max(job.t0, previous), dt)
        if share <= 0:
            continue
        dt -= share
        stack = job.last_stack
        if stack is None or job.t0 > previous:
            stack = [*job.handover, _function_identifier(job.fn)]
        capture.records.append((stack, share))
    return dt


def _function_identifier(fn: Any) -> str:
    """A job that no tick saw: named by its function."""
    while isinstance(fn, functools.partial):
        fn = fn.args[0] if fn.func.__name__ == "run" and fn.args else fn.func
    code = getattr(fn, "__code__", None)
    if code is None:
        return f"{getattr(fn, '__qualname__', type(fn).__name__)}\x00<job>\x000"
    return f"{code.co_name}\x00{code.co_filename}\x00{code.co_firstlineno}"


def await_chain(coroutine: Any) -> list[str]:
    """Where a suspended coroutine waits: its frame, then what it awaits, and so on down."""
    chain: list[str] = []
    for _ in range(200):
        if coroutine is None:
            break
        frame = getattr(coroutine, "cr_frame", None) or getattr(coroutine, "gi_frame", None)
        frame = frame or getattr(coroutine, "ag_frame", None)
        if frame is None:
            break
        chain.append(cached_identifier(frame))
        awaited = getattr(coroutine, "cr_await", None)
        if awaited is None:
            awaited = getattr(coroutine, "gi_yieldfrom", None) or getattr(coroutine, "ag_await", None)
        coroutine = awaited
    return chain
