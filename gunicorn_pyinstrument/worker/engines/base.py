"""The seam every capture technique plugs into."""

from __future__ import annotations

from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from ...report import Sampling

if TYPE_CHECKING:
    from pyinstrument.session import Session


class Engine(Protocol):
    #: start_worker() captures every thread of the process, not only the one that calls it.
    sees_every_thread: bool

    def start(self, description: str, coroutine: Any = None, frame: FrameType | None = None) -> Any:
        """Begin capturing the calling request, and the work it hands to thread pools; return a
        handle for stop(). On an event loop, ``coroutine`` is the request's (the app's), about to be
        awaited in ``frame``. May raise."""

    def start_worker(self, description: str) -> Any:
        """Begin capturing everything the worker runs (per-worker mode), from its main thread;
        return a handle for stop(). May raise."""

    def stop(self, handle: Any) -> Session:
        """Finish capturing and return the profile. Called in the same thread or task as start()."""

    def discard(self, handle: Any) -> None:
        """Stop and throw the capture away; never raises."""

    def sampling(self, handle: Any, session: Session, duration: float) -> Sampling:
        """How a stopped capture was sampled over the report's ``duration``: its rate, and the
        engine's cost over its span."""

    def usage(self) -> tuple[float, int] | None:
        """The engine's own CPU seconds and samples so far (None: it has no thread of its own), for
        the cost of a per-worker window."""
