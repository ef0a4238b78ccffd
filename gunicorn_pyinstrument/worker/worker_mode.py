"""Per-worker mode: each worker profiles everything it runs, one report per window.

Capture goes through the engine (``engines/``), as in request mode:

* a capture of the whole worker (``Engine.start_worker``), started on the worker's main thread,
  sees every request where they all run on that thread (as greenlets or tasks where concurrent),
  and the sampler engine sees every thread anyway. It is stopped and restarted every few seconds
  (a *segment*) and each segment is folded into the window's :class:`StackAggregate`, so memory is
  bounded by the distinct call stacks, not by the window's length.
* where requests run on pool threads (gthread, ``worker/classes.py``) and the engine sees only the
  thread that started it (pyinstrument's), each request is captured on its own thread (started
  in pre_request, stopped in post_request) and folded into the same window.

Windows and segments turn over on the worker's heartbeat (``worker.notify``, wrapped in
post_worker_init), which every worker class calls on the thread the profiler runs on: at least
every ``--timeout``/2 seconds when idle, and between requests when busy. That is also where the
schedule and the control file are checked.
"""

from __future__ import annotations

import itertools
import threading
import time
from contextvars import ContextVar
from typing import Any

from ..aggregate import StackAggregate, worker_root
from ..logs import ThrottledLog
from ..report import Report, Sampling, WindowFacts, WorkerIdentity
from ..settings import Settings
from .classes import facts_of
from .engines import Engine, PyinstrumentEngine, SamplerEngine
from .switch import Gate
from .writer import Writer

SEGMENT_SECONDS = 5.0

_request_capture: ContextVar[Any] = ContextVar("gunicorn_pyinstrument_window_request", default=None)


class WorkerMode:
    def __init__(self, settings: Settings, worker: Any, writer: Writer, log: ThrottledLog) -> None:
        self.engine: Engine = (
            SamplerEngine(settings.interval, max_overhead=settings.max_overhead)
            if settings.engine == "sampler"
            else PyinstrumentEngine(settings.interval, "disabled")
        )
        self.settings = settings
        self.writer = writer
        self.log = log
        self.identity = WorkerIdentity.current(worker)
        self.gate = Gate(settings.schedule, settings.control_file)
        # Requests on pool threads that the engine would not see: captured one by one.
        self.per_request = facts_of(worker).pool_threads and not self.engine.sees_every_thread
        self.windows_written = 0
        self._sequence = itertools.count(1)
        self._lock = threading.Lock()  # the aggregate is fed from pool threads under gthread
        self._aggregate = StackAggregate(worker_root(self.identity.pid))
        self._window_started: float | None = None  # epoch; None: no window open
        self._window_t0 = 0.0
        self._segment: Any = None
        self._segment_t0 = 0.0
        # At the window's start: the engine's CPU and samples (None: pyinstrument's), the worker's CPU.
        self._usage0: tuple[float, int] | None = None
        self._process0 = 0.0

    @property
    def window_open(self) -> bool:
        return self._window_started is not None

    # --- on the worker's main thread ---

    def tick(self) -> None:
        """Called on every heartbeat: turn segments and windows over, follow the gate."""
        try:
            now = time.monotonic()
            is_open = self.gate.is_open()
            if self.window_open:
                if not is_open or now - self._window_t0 >= self.settings.flush_interval:
                    self.flush(reopen=is_open)
                elif self._segment is not None and now - self._segment_t0 >= SEGMENT_SECONDS:
                    self._end_segment()
                    self._start_segment()
            elif is_open:
                self._open_window()
        except Exception:
            self.log.error("window", "could not turn the worker profile over")

    def _open_window(self, wall: float | None = None, monotonic: float | None = None) -> None:
        self._window_started = time.time() if wall is None else wall
        self._window_t0 = time.monotonic() if monotonic is None else monotonic
        self._usage0 = self.engine.usage()
        self._process0 = time.process_time()
        if not self.per_request:
            self._start_segment()

    def _start_segment(self) -> None:
        self._segment = self.engine.start_worker(f"worker {self.identity.pid}")
        self._segment_t0 = time.monotonic()

    def _end_segment(self) -> None:
        segment, self._segment = self._segment, None
        if segment is not None:
            self._fold(self.engine.stop(segment))

    def _fold(self, session: Any) -> None:
        with self._lock:
            self._aggregate.add(session)

    def flush(self, reopen: bool, now: bool = False) -> None:
        """Close the window: write its report (if it saw anything) and start afresh.
        ``now``: write it on this thread instead of queueing it (the worker is about to die)."""
        if not self.window_open:
            return
        self._end_segment()
        started = self._window_started or time.time()
        closed_wall, closed = time.time(), time.monotonic()
        duration = closed - self._window_t0
        usage0, usage, process = self._usage0, self.engine.usage(), time.process_time() - self._process0
        with self._lock:
            aggregate = self._aggregate
            self._aggregate = StackAggregate(worker_root(self.identity.pid))
        self._window_started = None
        if reopen:
            # The next window starts where this one ends: windows tile the worker's time, and the
            # work of writing this one is counted in the next.
            self._open_window(closed_wall, closed)
        if aggregate.samples:
            session = aggregate.to_session(started, duration, f"worker {self.identity.pid} window")
            facts = WindowFacts(started_at=started, duration=duration)
            report = Report(
                name=Report.make_name(facts, self.identity, next(self._sequence)),
                facts=facts,
                worker=self.identity,
                label=self.settings.label,
                formats=self.settings.formats,
                samples=aggregate.samples,
                interval=self.settings.interval,
                sampling=self._sampling(aggregate.samples, duration, usage0, usage, process),
            )
            if now:
                self.writer.write(report, session)
                self.windows_written += 1
            elif self.writer.submit(report, session):
                self.windows_written += 1

    def _sampling(
        self,
        samples: int,
        duration: float,
        start: tuple[float, int] | None,
        end: tuple[float, int] | None,
        process: float,
    ) -> Sampling:
        """The window's rate and the sampler's cost over it, from the engine's counters at both ends."""
        if start is None or end is None or duration <= 0:  # pyinstrument's engine
            return Sampling(rate=samples / duration if duration > 0 else None)
        cpu = max(0.0, end[0] - start[0])
        budget = self.settings.max_overhead
        return Sampling(
            rate=(end[1] - start[1]) / duration,
            cpu=cpu,
            share=cpu / process if process > 0 else None,
            over_budget=None if budget is None else cpu > budget * duration,
        )

    def close(self, timeout: float = 10.0) -> None:
        """At worker exit: the last window, then the writer."""
        try:
            self.flush(reopen=False)
            if not self.writer.close(timeout):
                self.log.warning("flush", f"writer did not finish in {timeout:g}s; reports may be lost")
        except Exception:
            self.log.error("window", "could not write the last window")

    def abort(self) -> None:
        """On SIGABRT (a timeout): write the open window at once, on this thread."""
        try:
            self.flush(reopen=False, now=True)
        except Exception:
            self.log.error("window", "could not write the window of an aborted worker")

    # --- gthread: one capture per request, on the request's thread ---

    def request_started(self) -> None:
        if not self.per_request or not self.window_open:
            return
        try:
            _request_capture.set(self.engine.start(f"worker {self.identity.pid}"))
        except Exception:
            self.log.error("start", "could not start profiling a request")

    def request_finished(self) -> None:
        capture = _request_capture.get()
        if capture is None:
            return
        _request_capture.set(None)
        try:
            session = self.engine.stop(capture)
            # A window the gate closed meanwhile is written already; the next may open much later.
            if self.window_open:
                self._fold(session)
        except Exception:
            self.log.error("stop", "could not stop a profiler")
