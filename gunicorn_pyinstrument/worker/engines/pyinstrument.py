"""pyinstrument's Profiler, one per profiled request.

A Profiler samples only the thread that called start(), through a hook that runs on every
Python call, so it is started only for chosen requests and stopped in the same thread or task.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import TYPE_CHECKING, Any, Literal

from ...processors import collapse_out_of_context

if TYPE_CHECKING:
    from pyinstrument.session import Session

_PACKAGE = __name__.rsplit(".", 2)[0]
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


class PyinstrumentEngine:
    sees_every_thread = False

    def __init__(self, interval: float, async_mode: AsyncMode = "disabled") -> None:
        # Imported in the worker (post_fork), never in the master; before gevent patches threading.
        from pyinstrument import Profiler

        self._profiler_class = Profiler
        self.interval = interval
        self.async_mode = async_mode

    def start(self, description: str) -> Any:
        profiler = self._profiler_class(interval=self.interval, async_mode=self.async_mode)
        profiler.start(caller_frame=_first_outside_package(), target_description=description)
        return profiler

    def start_worker(self, description: str) -> Any:
        """The calling thread, every context in it (no async filtering): every request of the
        workers that run them all on their main thread."""
        profiler = self._profiler_class(interval=self.interval, async_mode="disabled")
        profiler.start(target_description=description)
        return profiler

    def stop(self, handle: Any) -> Session:
        session: Session = handle.stop()
        if self.async_mode == "strict":
            session.frame_records = collapse_out_of_context(session.frame_records)
        return session

    def discard(self, handle: Any) -> None:
        try:
            if handle.is_running:
                handle.stop()
        except Exception:
            pass
