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
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, ClassVar

from .frames import cached_identifier, stack_of, stack_until, thread_root
from .handover import Job

AWAIT = "[await]"
_WAITS = frozenset(
    {
        threading.Condition.wait.__code__,
        threading.Event.wait.__code__,
        concurrent.futures.Future.result.__code__,
        concurrent.futures.wait.__code__,
    }
)


@dataclass(eq=False)
class Capture:
    """What is recorded for one request, or for every thread of the worker (``ident`` None)."""

    ident: int | None
    description: str
    start_call_stack: list[str]
    coroutine: Any = None  # a request on an event loop: the app's coroutine, for its await chain
    prefix: list[str] = field(default_factory=list)  # ... and the stack down to where it is awaited
    greenlet: Any = None  # a request on a greenlet
    started_at: float = field(default_factory=time.time)
    t0: float = field(default_factory=time.perf_counter)
    last: dict[int, float] = field(default_factory=dict)
    records: list[tuple[list[str], float]] = field(default_factory=list)
    active: bool = True
    jobs: dict[int, Job] = field(default_factory=dict)  # running, by id
    finished: list[Job] = field(default_factory=list)  # ended since the previous tick
    frames: list[FrameType] = field(default_factory=list)  # on the loop's stack: the request runs
    handed_over: bool = False  # work went to a pool: its patched entry points are in the stacks

    wants_handover_stack: ClassVar[bool] = True

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
            working.append(stack_of(frames.get(ident), thread_root(ident)))
        else:
            waiting.append([*stack_of(gr_frame, thread_root(ident)), AWAIT])
    else:
        frame = frames.get(ident)
        if frame is not None:
            (waiting if frame.f_code in _WAITS else working).append(stack_of(frame, thread_root(ident)))
    for job in list(capture.jobs.values()):
        frame = frames.get(job.ident)
        own = stack_until(frame, job.frame) if frame is not None and job.frame is not None else None
        if own is None:  # the pool thread has moved on to other work already
            continue
        job.last_stack = job.handover + own
        (waiting if frame is not None and frame.f_code in _WAITS else working).append(job.last_stack)
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
