"""The sampler engine: stacks read from a background thread, at the interval, for a few percent of CPU.

pyinstrument's profiler runs a hook on every Python call of the thread it profiles (about x3 on
Python-heavy code). This engine instead wakes every ``interval`` in a thread of its own, reads the
current frame of each thread that is serving a profiled request (``sys._current_frames()``), and
records that stack weighted by the wall-clock time since the previous sample: requests run at full
speed and the cost is one stack walk per sample. The result is a genuine pyinstrument Session, so
every renderer, the writer and the merge work unchanged.

A request is followed wherever it runs (``lanes.py``): its thread; on an event loop, its task
(and the tasks it creates), found on the loop's stack by their frames, with no hook per task step;
under gevent, its greenlet, whose ``gr_frame`` says where it waits while switched out; and the pool
threads working for it (``handover.py``).

Trade-offs, against the pyinstrument engine: functions shorter than the interval are seen only
statistically, and time is wall-clock (a thread waiting on I/O or for the GIL is charged to the
function it waits in).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from types import FrameType
from typing import TYPE_CHECKING, Any

from ...report import Sampling
from . import handover
from .frames import stack_of, thread_root
from .lanes import Capture, tick

if TYPE_CHECKING:
    from pyinstrument.session import Session

_PACKAGE = __name__.split(".")[0]


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
#: The budget (MAX_OVERHEAD) is checked, and the interval set again, this often.
ADJUST_SECONDS = 0.25
#: The longest interval the budget can set (10 Hz), unless INTERVAL is longer.
FLOOR_INTERVAL = 0.1
#: The share of the budget the interval is set to use: a period's cost is estimated from the
#: previous one, and the margin takes up the difference.
BUDGET_TARGET = 0.9


class SamplerEngine:
    """No lock on the paths that requests take, nor around a sample. With several request threads
    (gthread), the GIL can be taken from the sampler in the middle of a sample: a lock held across
    it made every request that started or ended meanwhile queue behind the sampler (measured: a
    sample of 70 us of CPU then took 1.5-4 ms of wall-clock time, and the workers 6-7 % more CPU per
    request). Each dict and list operation used here is atomic under the GIL, and stop() returns a
    copy of the records, so a sample that lands after stop() changes nothing that was returned.

    With ``max_overhead`` (a fraction), the sampler keeps its own CPU time under that share of the
    wall-clock time: every ADJUST_SECONDS it divides the CPU its thread used by its wakes, and sets
    the interval at which a wake costing that much uses the budget, between ``interval`` (the
    fastest) and FLOOR_INTERVAL. The measure is the thread's CPU time, which is the time it holds
    the GIL (measured: 135-193 us per sample of four busy threads, against 150-200 us of wall time
    from taking the GIL to letting it go); the wall time from the deadline, 16-27 ms there, is
    mostly waiting for the GIL while the request threads run, and would have pinned the rate to
    the floor for no cost to them."""

    sees_every_thread = True

    def __init__(self, interval: float, greenlets: bool = False, max_overhead: float | None = None) -> None:
        self.interval = interval  # asked for: the fastest
        self.max_overhead = max_overhead
        self.slowest = max(interval, FLOOR_INTERVAL)
        self.current = interval  # in effect: set by the budget
        # The sampler thread's CPU seconds and samples so far: what reports read their cost from.
        self.cpu = 0.0
        self.ticks = 0
        self.greenlets = greenlets  # requests are greenlets (gevent)
        self._captures: dict[int, Capture] = {}  # by id(capture)
        # Frames whose presence on an event loop's stack means that the capture's request runs:
        # the wrapper's own frame, and the first frame of every task the request creates.
        self._frame_owner: dict[FrameType, Capture] = {}
        self._loops: set[Any] = set()  # event loops whose task factory notes the request's tasks
        self._following = False
        self._get_ident = _original("_thread", "get_ident")
        allocate_lock = _original("_thread", "allocate_lock")
        self._start_lock = allocate_lock()  # only around starting the sampler thread, once
        # Released when a capture is registered: with nothing to record for a while, the sampler
        # thread sleeps on it instead of waking (and taking the GIL) every interval.
        self._wake = allocate_lock()
        self._wake.acquire()
        self._sleep = _original("time", "sleep")
        self._thread: Any = None

    # --- the Engine interface ---

    def start(self, description: str, coroutine: Any = None, frame: FrameType | None = None) -> Capture:
        """Record the calling request until stop(): its thread; or, with ``coroutine`` (the app's,
        about to be awaited in ``frame``), its task on this thread's event loop; or its greenlet."""
        if not self._following:
            handover.install()
            self._following = True
        ident = self._get_ident()
        caller = sys._getframe(1)
        while caller.f_back is not None and caller.f_globals.get("__name__", "").startswith(_PACKAGE):
            caller = caller.f_back
        capture = Capture(ident, description, caller)
        capture.cpu0 = self.cpu
        capture.process0 = time.process_time()
        if coroutine is not None and frame is not None:
            capture.coroutine = coroutine
            capture.prefix = stack_of(frame, thread_root(ident))
            self._own(capture, frame)
            self._note_tasks(asyncio.get_running_loop())
        elif self.greenlets:
            import greenlet

            capture.greenlet = greenlet.getcurrent()
        handover.CURRENT.set(capture)
        self._register(capture)
        return capture

    def start_worker(self, description: str) -> Capture:
        """Record every thread of the process (but the sampler's) until stop(): per-worker mode."""
        capture = Capture(None, description, start_call_stack=["[all threads]"])
        capture.cpu0 = self.cpu
        capture.process0 = time.process_time()
        self._register(capture)
        return capture

    def stop(self, handle: Any) -> Session:
        capture: Capture = handle
        start_call_stack = capture.start_call_stack  # walked now: _forget() lets go of its frame
        self._forget(capture)
        now = time.perf_counter()
        if capture.finished:  # jobs that ended since the last tick: their last stretch, exactly
            capture.last[capture.ident or 0] = now
            tick(capture, {}, now, lambda: ([], ()))
        # A copy: a sample already under way may still append to the capture's own list. Taken
        # before the clock is read, so no sample in it ends after the session does.
        records = list(capture.records)
        return self._session(capture, records, now, start_call_stack)

    def discard(self, handle: Any) -> None:
        self._forget(handle)

    def sampling(self, handle: Any, session: Session, duration: float) -> Sampling:
        """A stopped capture's rate, and the sampler thread's CPU over its span: all of it, whatever
        else it sampled meanwhile, against all the worker's CPU."""
        capture: Capture = handle
        cpu = max(0.0, self.cpu - capture.cpu0)
        worker = time.process_time() - capture.process0
        return Sampling(
            rate=capture.ticks / duration if duration > 0 else None,
            cpu=cpu,
            share=cpu / worker if worker > 0 else None,
        )

    def usage(self) -> tuple[float, int]:
        """The sampler thread's CPU seconds and its samples so far."""
        return self.cpu, self.ticks

    def _forget(self, capture: Capture) -> None:
        capture.active = False
        capture.caller = None
        self._captures.pop(id(capture), None)
        for frame in capture.frames:
            self._frame_owner.pop(frame, None)
        if handover.CURRENT.get() is capture:
            handover.CURRENT.set(None)

    # --- requests on an event loop ---

    def _own(self, capture: Capture, frame: FrameType) -> None:
        self._frame_owner[frame] = capture
        capture.frames.append(frame)

    def _note_tasks(self, loop: Any) -> None:
        """Make the loop's task factory note the tasks that profiled requests create (a gather, a
        task group, Starlette's call_next), so that their work counts as the request's."""
        if loop in self._loops:
            return
        self._loops.add(loop)
        previous = loop.get_task_factory()
        own = self._own

        def factory(loop: Any, coro: Any, **kwargs: Any) -> Any:
            task = (
                previous(loop, coro, **kwargs)
                if previous is not None
                else asyncio.Task(coro, loop=loop, **kwargs)
            )
            context = kwargs.get("context")
            owner = context.get(handover.CURRENT) if context is not None else handover.CURRENT.get()
            frame = getattr(coro, "cr_frame", None)
            if isinstance(owner, Capture) and owner.active and frame is not None:
                own(owner, frame)
            return task

        loop.set_task_factory(factory)

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
        me = self._get_ident()
        clock = time.perf_counter
        cpu_clock = time.thread_time  # this thread's own: a real OS thread, even under gevent
        deadline = clock()
        idle_since: float | None = None
        period_start, period_cpu, period_wakes = deadline, cpu_clock(), 0
        while True:
            if self._captures:
                idle_since = None
            elif idle_since is None:
                idle_since = clock()
            elif clock() - idle_since >= IDLE_PARK_SECONDS:
                self._park()
                idle_since = None
                deadline = clock()
                self.current = self.interval  # a fresh start: what loaded it before may be gone
                period_start, period_cpu, period_wakes = deadline, cpu_clock(), 0
            # Sleep until the next deadline rather than a full interval after the last sample, so
            # the time a sample takes (and waiting for the GIL) does not lower the rate.
            deadline += self.current
            delay = deadline - clock()
            if delay > 0:
                self._sleep(delay)
            else:
                deadline = clock()  # fell behind (a busy machine): carry on, no burst to catch up
            if self._captures:
                # A frame that vanishes mid-walk only costs this sample.
                with contextlib.suppress(Exception):
                    self.sample(exclude=me)
            self.cpu = cpu = cpu_clock()
            period_wakes += 1
            now = clock()
            if now - period_start >= ADJUST_SECONDS:
                self._adjust(cpu - period_cpu, period_wakes)
                period_start, period_cpu, period_wakes = now, cpu, 0

    def _adjust(self, cpu: float, wakes: int) -> None:
        """Set the interval from the last period's CPU per wake (the sample, the sleep, this loop):
        the interval at which that cost uses BUDGET_TARGET of the budget. It falls back to
        ``interval`` as soon as a period's wakes cost little again."""
        if self.max_overhead is None or wakes <= 0:
            return
        wanted = cpu / wakes / (self.max_overhead * BUDGET_TARGET)
        self.current = min(max(wanted, self.interval), self.slowest)

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
        self.ticks += 1
        frames = sys._current_frames()
        now = time.perf_counter()
        roots: dict[int, str] = {}
        loops: dict[int, tuple[list[str], set[Capture]]] = {}
        for capture in captures:
            if capture.ident is not None:
                ident = capture.ident
                tick(capture, frames, now, lambda i=ident: self._loop_stack(loops, frames, i))  # type: ignore[misc]
                continue
            capture.ticks += 1
            for ident in [i for i in frames if i != exclude]:
                frame = frames.get(ident)
                if frame is None:
                    continue
                root = roots.get(ident) or roots.setdefault(ident, thread_root(ident))
                # A sample stands for the wall-clock time since the previous one (the sampler may
                # wake late when the machine or the GIL is busy: the time still counts).
                previous = capture.last.get(ident, capture.t0)
                capture.last[ident] = now
                capture.records.append((stack_of(frame, root), now - previous))

    def _loop_stack(
        self, loops: dict[int, tuple[list[str], set[Capture]]], frames: dict[int, FrameType], ident: int
    ) -> tuple[list[str], set[Capture]]:
        """An event loop thread's stack, and the captures whose request it is running: walked once
        per tick, however many requests the loop serves."""
        known = loops.get(ident)
        if known is None:
            running: set[Capture] = set()
            owners = self._frame_owner
            frame = frames.get(ident)
            walk = frame
            while walk is not None:
                owner = owners.get(walk)
                if owner is not None:
                    running.add(owner)
                walk = walk.f_back
            known = loops[ident] = (stack_of(frame, thread_root(ident)), running)
        return known

    def _session(
        self,
        capture: Capture,
        records: list[tuple[list[str], float]],
        now: float,
        start_call_stack: list[str],
    ) -> Session:
        from pyinstrument.session import Session

        duration = now - capture.t0
        if capture.handed_over:
            records = handover.without_own_frames(records)
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
            start_call_stack=start_call_stack,
            target_description=capture.description,
            cpu_time=0.0,
            sys_path=list(sys.path),
            sys_prefixes=Session.current_sys_prefixes(),
        )
