"""The per-worker profiling agent: selection, capture and hand-over to the writer.

One Agent per worker process, created in post_fork. Per-request state lives in a ContextVar,
which is per thread under gthread and per task under asyncio, never on the shared worker.
Every public method guards itself: the agent never raises into gunicorn or the app.
"""

from __future__ import annotations

import itertools
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from .engines import Engine, PyinstrumentEngine
from .engines.pyinstrument import AsyncMode
from .logs import ThrottledLog, fallback_logger
from .report import Report, RequestFacts, WorkerIdentity, status_code
from .selection import TOKEN_HEADER_UPPER, TRIGGER_TOKEN, Selector, decoded_path, header_value
from .settings import Settings
from .writer import Writer

# Worker classes whose requests share one thread (greenlets, asyncio tasks): only pyinstrument's
# "strict" mode keeps another request's frames out of a report.
_CONCURRENT_IN_ONE_THREAD = ("GeventWorker", "ASGIWorker", "UvicornWorker")
FLUSH_SECONDS = 10.0


def async_mode_for(worker: Any) -> AsyncMode:
    return "strict" if type(worker).__name__ in _CONCURRENT_IN_ONE_THREAD else "disabled"


@dataclass
class _Active:
    req: Any
    handle: Any
    started_at: float
    t0: float
    method: str
    path: str
    trigger: str


_active: ContextVar[_Active | None] = ContextVar("gunicorn_pyinstrument_active", default=None)


class Agent:
    def __init__(self, settings: Settings, worker: Any, engine: Engine | None = None) -> None:
        self.settings = settings
        self.log = ThrottledLog(getattr(worker, "log", None) or fallback_logger())
        self.identity = WorkerIdentity.current(worker)
        self.selector = Selector.from_settings(settings)
        self.engine: Engine = engine or PyinstrumentEngine(settings.interval, async_mode_for(worker))
        self.writer = Writer(settings.dir, settings.file_mode, settings.queue_size, self.log)
        self._sequence = itertools.count(1)

    def request_started(self, req: Any) -> None:
        try:
            path = decoded_path(getattr(req, "path", "") or "")
            offered = None
            if self.selector.token is not None:
                offered = header_value(getattr(req, "headers", ()) or (), TOKEN_HEADER_UPPER)
            trigger = self.selector.decide(path, offered)
            if trigger is None:
                return
            stale = _active.get()
            if stale is not None:  # a request in this context that never reached post_request
                self.engine.discard(stale.handle)
                _active.set(None)
            method = str(getattr(req, "method", "") or "")
            handle = self.engine.start(f"{method} {path}")
            _active.set(_Active(req, handle, time.time(), time.perf_counter(), method, path, trigger))
        except Exception:
            self.log.error("start", "could not start profiling a request")

    def request_finished(self, req: Any, resp: Any) -> None:
        active = _active.get()
        if active is None:
            return
        _active.set(None)
        duration = time.perf_counter() - active.t0
        try:
            if active.req is not req:
                self.engine.discard(active.handle)
                return
            session = self.engine.stop(active.handle)
        except Exception:
            self.engine.discard(active.handle)
            self.log.error("stop", "could not stop a profiler")
            return
        try:
            if active.trigger != TRIGGER_TOKEN and duration < self.settings.min_duration:
                return
            status = status_code(getattr(resp, "status", None)) if resp is not None else None
            facts = RequestFacts(
                method=active.method,
                path=active.path,
                # No status yet means the app raised before responding: gunicorn answers 500.
                status=status if status is not None else 500,
                started_at=active.started_at,
                duration=duration,
                trigger=active.trigger,
            )
            report = Report(
                name=Report.make_name(facts, self.identity, next(self._sequence)),
                facts=facts,
                worker=self.identity,
                label=self.settings.label,
                formats=self.settings.formats,
                samples=int(getattr(session, "sample_count", 0)),
                interval=self.settings.interval,
            )
            self.writer.submit(report, session)
        except Exception:
            self.log.error("report", "could not hand a profile to the writer")

    def close(self, timeout: float = FLUSH_SECONDS) -> None:
        """Flush the writer; called from worker_exit."""
        try:
            if not self.writer.close(timeout):
                self.log.warning(
                    "flush", f"writer did not finish within {timeout:g}s; some reports may be lost"
                )
            if self.writer.dropped or self.writer.failed:
                self.log.warning(
                    "summary",
                    f"worker {self.identity.pid}: {self.writer.written} reports written, "
                    f"{self.writer.dropped} dropped (queue full), {self.writer.failed} failed",
                )
        except Exception:
            self.log.error("close", "could not flush the writer")
