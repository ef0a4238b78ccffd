"""The per-worker profiling agent: selection, capture and hand-over to the writer.

One RequestMode per worker process, created in post_worker_init. Two front-ends feed it:
gunicorn's request hooks (sync, gthread, gevent), which keep the request's state in a ContextVar
(per thread under gthread, per greenlet under gevent), and the app wrappers in ``wrappers.py``
(asgi, UvicornWorker, tornado, gevent_pywsgi), which hold it in their own call frame.
Per-request state is never kept on the shared worker object. Every public method guards itself:
the agent never raises into gunicorn or the app.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from types import FrameType
from typing import Any

from ..logs import ThrottledLog, fallback_logger
from ..processors import merge_repeats
from ..report import OUTCOME_TIMEOUT, Report, RequestFacts, Sampling, WorkerIdentity, status_code
from ..settings import Settings
from .choosing import TOKEN_HEADER_UPPER, TRIGGER_TOKEN, Selector, decoded_path, header_value
from .classes import WorkerClass, facts_of
from .engines import Engine, PyinstrumentEngine
from .engines.pyinstrument import AsyncMode
from .engines.sampler import SamplerEngine
from .writer import Writer

FLUSH_SECONDS = 10.0
#: What worker_abort may spend writing in-flight profiles: gunicorn sends SIGKILL about 1 s
#: after SIGABRT.
ABORT_BUDGET_SECONDS = 0.6


def async_mode_for(facts: WorkerClass) -> AsyncMode:
    """Only pyinstrument's strict mode keeps another request's frames out of a report when
    concurrent requests share one thread."""
    return "strict" if facts.shares_thread else "disabled"


def make_engine(settings: Settings, worker: Any, facts: WorkerClass | None = None) -> Engine:
    """The engine for a worker; ``facts`` stand for its class where there is no gunicorn worker
    (the middleware, ``process_state.py``)."""
    facts = facts or facts_of(worker)
    if settings.engine == "sampler":
        return SamplerEngine(settings.interval, facts.greenlets, settings.max_overhead)
    return PyinstrumentEngine(settings.interval, async_mode_for(facts), facts.greenlets)


@dataclass
class Active:
    """One request being profiled."""

    handle: Any
    started_at: float
    t0: float
    method: str
    path: str
    trigger: str
    thread: int
    query: str | None = None
    headers: dict[str, str] | None = None
    req: Any = None  # the gunicorn request object, for the hook front-end
    done: bool = False


_active: ContextVar[Active | None] = ContextVar("gunicorn_pyinstrument_active", default=None)

#: Signals whose gunicorn handlers end a worker by raising SystemExit wherever the main thread is:
#: the quick stop (INT, QUIT) and the timeout abort.
_EXITING_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGABRT)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """On the main thread, hold back the handlers of the exiting signals while a finished request
    is handed over: one landing in the middle would lose the report of a request already answered
    (sync workers run post_request on the main thread). A signal that came meanwhile is handled
    right after, as it would have been."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[tuple[int, Any]] = []
    previous: dict[int, Callable[[int, Any], Any]] = {}
    try:
        for signum in _EXITING_SIGNALS:
            handler = signal.getsignal(signum)
            if callable(handler):
                signal.signal(signum, lambda sig, frame: held.append((sig, frame)))
                previous[signum] = handler
    except (ValueError, OSError):
        pass  # not the main interpreter: nothing to hold
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number, frame in held:
            previous[number](number, frame)


class RequestMode:
    def __init__(self, settings: Settings, worker: Any, engine: Engine | None = None) -> None:
        self.settings = settings
        self.log = ThrottledLog(getattr(worker, "log", None) or fallback_logger())
        self.identity = WorkerIdentity.current(worker)
        self.selector = Selector.from_settings(settings)
        self.engine: Engine = engine or make_engine(settings, worker)
        self.writer = Writer(
            settings.dir,
            settings.file_mode,
            settings.queue_size,
            self.log,
            bounded=settings.upload is not None,  # the directory is an upload spool
        )
        self._sequence = itertools.count(1)
        # Requests being profiled, for worker_abort; dict operations are atomic under the GIL.
        self._in_flight: dict[int, Active] = {}
        # False when an app wrapper serves this worker instead of the request hooks.
        self.hooks_enabled = True

    # --- the core, shared by every front-end ---

    def begin(
        self,
        method: str,
        path: str,
        header: Callable[[str], str | None],
        query: Callable[[], str] | None = None,
        coroutine: Any = None,
        frame: FrameType | None = None,
    ) -> Active | None:
        """Decide, and start a profiler when chosen. ``path`` is percent-decoded; ``header(NAME)``
        looks a request header up by its upper-case name; ``query()`` gives the query string. Both
        are only called when needed: for the token, and for what the user opted to record. On an
        event loop, ``coroutine`` is the app's, about to be awaited in ``frame``."""
        try:
            offered = header(TOKEN_HEADER_UPPER) if self.selector.token is not None else None
            trigger = self.selector.decide(path, offered)
            if trigger is None:
                return None
            recorded_query, recorded_headers = self._recorded(header, query)
            handle = self.engine.start(f"{method} {path}", coroutine, frame)
            active = Active(
                handle,
                time.time(),
                time.perf_counter(),
                method,
                path,
                trigger,
                threading.get_ident(),
                recorded_query,
                recorded_headers,
            )
            self._in_flight[id(active)] = active
            return active
        except Exception:
            self.log.error("start", "could not start profiling a request")
            return None

    def _recorded(
        self, header: Callable[[str], str | None], query: Callable[[], str] | None
    ) -> tuple[str | None, dict[str, str] | None]:
        settings = self.settings
        recorded_query = (query() if query is not None else "") if settings.record_query else None
        recorded_headers = None
        if settings.record_headers:
            recorded_headers = {}
            for name in settings.record_headers:
                value = header(name.upper())
                if value is not None:
                    recorded_headers[name] = value
        return recorded_query, recorded_headers

    def _keeps(self, active: Active, duration: float | None = None) -> bool:
        """Will this request's profile be written (long enough, or asked for with the token)?"""
        if duration is None:
            duration = time.perf_counter() - active.t0
        return active.trigger == TRIGGER_TOKEN or duration >= self.settings.min_duration

    def end(self, active: Active, status: int | None, resp: Any = None) -> None:
        """Stop the profiler and hand the profile to the writer (or drop it if too short).
        ``resp``: a gunicorn response to read the status from, after the profiler has stopped."""
        duration = time.perf_counter() - active.t0
        self._in_flight.pop(id(active), None)
        if active.done:  # already written by worker_abort
            return
        active.done = True
        if not self._keeps(active, duration):
            # Too short to keep: stop without building a Session (the common case with the sampler).
            try:
                self.engine.discard(active.handle)
            except Exception:
                self.log.error("stop", "could not stop a profiler")
            return
        try:
            session = self.engine.stop(active.handle)
        except Exception:
            self.engine.discard(active.handle)
            self.log.error("stop", "could not stop a profiler")
            return
        try:
            sampling = self.engine.sampling(active.handle, session, duration)
            if resp is not None:
                status = status_code(getattr(resp, "status", None))
            # No status means the app raised before responding: gunicorn answers 500.
            status = status if status is not None else 500
            report = self._report(active, status, duration, session, sampling)
            self.writer.submit(report, session)
        except Exception:
            self.log.error("report", "could not hand a profile to the writer")

    def _report(
        self,
        active: Active,
        status: int | None,
        duration: float,
        session: Any,
        sampling: Sampling,
        outcome: str = "",
    ) -> Report:
        facts = RequestFacts(
            method=active.method,
            path=active.path,
            status=status,
            started_at=active.started_at,
            duration=duration,
            trigger=active.trigger,
            outcome=outcome,
            query=active.query,
            headers=active.headers,
        )
        return Report(
            name=Report.make_name(facts, self.identity, next(self._sequence)),
            facts=facts,
            worker=self.identity,
            label=self.settings.label,
            formats=self.settings.formats,
            samples=int(getattr(session, "sample_count", 0)),
            interval=self.settings.interval,
            sampling=sampling,
        )

    # --- front-end: gunicorn's pre_request / post_request hooks ---

    def request_started(self, req: Any) -> None:
        if not self.hooks_enabled:
            return
        try:
            stale = _active.get()
            if stale is not None:  # a request in this context that never reached post_request
                self._in_flight.pop(id(stale), None)
                self.engine.discard(stale.handle)
                _active.set(None)
            path = decoded_path(str(getattr(req, "path", "") or ""))
            headers = getattr(req, "headers", ()) or ()
            active = self.begin(
                str(getattr(req, "method", "") or ""),
                path,
                lambda name: header_value(headers, name),
                lambda: str(getattr(req, "query", "") or ""),
            )
            if active is not None:
                active.req = req
                _active.set(active)
        except Exception:
            self.log.error("start", "could not start profiling a request")

    def request_finished(self, req: Any, resp: Any) -> None:
        if not self.hooks_enabled:
            return
        active = _active.get()
        if active is None:
            return
        _active.set(None)
        if active.req is not req:
            self._in_flight.pop(id(active), None)
            self.engine.discard(active.handle)
            return
        if not self._keeps(active):
            self.end(active, None, resp)  # dropped as too short: no report to lose to a signal
            return
        with signals_held():
            self.end(active, None, resp)

    # --- timeouts and exit ---

    def abort(self) -> int:
        """Write the profile of every in-flight request this thread can stop, now, within a hard
        budget; marked as a timeout in metadata and file name. Returns how many were written.

        Runs from worker_abort or a SIGABRT handler, on the thread the signal interrupted.
        """
        deadline = time.perf_counter() + ABORT_BUDGET_SECONDS
        written = 0
        me = threading.get_ident()
        for active in sorted(self._in_flight.values(), key=lambda a: a.t0):
            if time.perf_counter() > deadline:
                self.log.warning("abort-budget", "ran out of time writing timed-out profiles")
                break
            if active.done or active.thread != me:
                continue  # a profiler can only be stopped on its own thread
            active.done = True
            self._in_flight.pop(id(active), None)
            duration = time.perf_counter() - active.t0
            try:
                session = self.engine.stop(active.handle)
                session.frame_records = merge_repeats(session.frame_records)
                sampling = self.engine.sampling(active.handle, session, duration)
                report = self._report(active, None, duration, session, sampling, OUTCOME_TIMEOUT)
                self.writer.write(report, session)  # synchronously: the process dies within a second
                written += 1
            except Exception:
                self.log.error("abort", "could not write the profile of a timed-out request")
        return written

    def close(self, timeout: float = FLUSH_SECONDS) -> None:
        """Flush the writer; called when the worker exits."""
        try:
            if not self.writer.close(timeout):
                self.log.warning("flush", f"writer did not finish in {timeout:g}s; reports may be lost")
            writer = self.writer
            if writer.dropped or writer.failed or writer.spool_dropped:
                spool = f", {writer.spool_dropped} dropped (spool full)" if writer.spool_dropped else ""
                self.log.warning(
                    "summary",
                    f"worker {self.identity.pid}: {writer.written} reports written, "
                    f"{writer.dropped} dropped (queue full), {writer.failed} failed{spool}",
                )
        except Exception:
            self.log.error("close", "could not flush the writer")
