"""pyinstrument's Profiler, one per profiled request.

A Profiler samples only the thread that called start(), through a hook that runs on every
Python call, so it is started only for chosen requests and stopped in the same thread or task.
Work the request hands to a thread pool (``handover.py``) runs under a profiler of its own in its
pool thread, and is grafted into the request's profile where the request waited for it
(``graft.py``). Under gevent, time a greenlet spent switched out is put where it switched out
(``greenlets.py``).
"""

from __future__ import annotations

import sys
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from ...processors import collapse_out_of_context
from ...report import Sampling
from . import handover
from .frames import below_tasks, function_key, stack_of, thread_root
from .graft import graft, job_records
from .greenlets import SwitchLog

if TYPE_CHECKING:
    from pyinstrument.session import Session

_PACKAGE = __name__.split(".")[0]
AsyncMode = Literal["enabled", "disabled", "strict"]


def _first_outside_package() -> FrameType | None:
    """The frame that called the hooks (gunicorn's request handler), so pyinstrument trims
    the plugin's own frames from the root of the report."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_PACKAGE):
        frame = frame.f_back
    return frame


def prepare_import() -> None:
    """Import pyinstrument now, in post_fork: before gevent patches threading, so pyinstrument's
    per-thread state stays per OS thread. If threading was patched already (a config that calls
    gevent.monkey.patch_all()), point that state back at a real thread-local."""
    from pyinstrument import stack_sampler

    if type(stack_sampler.thread_locals).__module__.startswith("gevent"):
        from gevent import monkey

        stack_sampler.thread_locals = monkey.get_original("_thread", "_local")()


class Capture:
    """One request: its profiler, and the pool jobs it handed over."""

    wants_handover_stack = True  # where a job goes when no record of the wait holds its caller

    def __init__(self, engine: PyinstrumentEngine, profiler: Any, t0: float, idle: list[str]) -> None:
        self.engine = engine
        self.profiler = profiler
        self.t0 = t0
        self.idle = idle  # the event loop's own frames, as function keys (graft.py)
        self.active = True
        self.done: list[handover.Job] = []  # finished jobs the request handed over itself
        self.switches: SwitchLog | None = None

    def job_started(self, job: handover.Job) -> None:
        job.profiler = self.engine.profiler_class(interval=self.engine.interval, async_mode="disabled")
        job.profiler.start()

    def job_finished(self, job: handover.Job) -> None:
        profiler, job.profiler = job.profiler, None
        if profiler is not None:
            job.records = job_records(profiler.stop().frame_records)
        if job.parent is None and self.active:
            self.done.append(job)


def _forget(capture: Capture) -> None:
    capture.active = False
    if handover.CURRENT.get() is capture:
        handover.CURRENT.set(None)


class PyinstrumentEngine:
    sees_every_thread = False

    def __init__(self, interval: float, async_mode: AsyncMode = "disabled", greenlets: bool = False) -> None:
        # Imported in the worker (post_fork), never in the master; before gevent patches threading.
        from pyinstrument import Profiler

        self.profiler_class = Profiler
        self.interval = interval
        self.async_mode = async_mode
        self.greenlets = greenlets
        self._following = False

    def start(self, description: str, coroutine: Any = None, frame: FrameType | None = None) -> Capture:
        if not self._following:
            handover.install()
            self._following = True
        profiler = self.profiler_class(interval=self.interval, async_mode=self.async_mode)
        t0 = time.perf_counter()
        profiler.start(caller_frame=_first_outside_package(), target_description=description)
        base = below_tasks(frame)
        idle = [function_key(f) for f in stack_of(base, thread_root(threading.get_ident()))] if base else []
        capture = Capture(self, profiler, t0, idle)
        handover.CURRENT.set(capture)
        if self.greenlets:
            capture.switches = SwitchLog.start()
        return capture

    def start_worker(self, description: str) -> Any:
        """The calling thread, every context in it (no async filtering): every request of the
        workers that run them all on their main thread."""
        profiler = self.profiler_class(interval=self.interval, async_mode="disabled")
        profiler.start(target_description=description)
        return profiler

    def stop(self, handle: Any) -> Session:
        if not isinstance(handle, Capture):  # a whole worker's capture
            worker_session: Session = handle.stop()
            return worker_session
        _forget(handle)
        session: Session = handle.profiler.stop()
        records = [(list(stack), seconds) for stack, seconds in session.frame_records]
        if handle.done:
            # Jobs still running (a cancelled request, fire-and-forget) are not waited for: their
            # time stays the request's wait.
            spare = max(0.0, session.duration - sum(seconds for _, seconds in records))
            records = graft(records, handle.t0, handle.done, spare, handle.idle)
            records = handover.without_own_frames(records)
        if handle.switches is not None:
            records = handle.switches.finish(records, handle.t0)
        if self.async_mode == "strict":
            records = collapse_out_of_context(records)
        session.frame_records = records
        return session

    def sampling(self, handle: Any, session: Session, duration: float) -> Sampling:
        """The rate only: pyinstrument's work is done in the profiled thread, on every call."""
        return Sampling(rate=session.sample_count / duration if duration > 0 else None)

    def usage(self) -> None:
        return None

    def discard(self, handle: Any) -> None:
        try:
            if isinstance(handle, Capture):
                _forget(handle)
                if handle.switches is not None:
                    handle.switches.close()
                handle = handle.profiler
            if handle.is_running:
                handle.stop()
        except Exception:
            pass
