"""App wrappers for the workers that never call pre_request/post_request.

gevent_pywsgi, tornado and UvicornWorker serve requests without gunicorn's request hooks, and
gunicorn's own asgi worker gives post_request no status unless access logging is on. For them
``post_worker_init`` replaces the loaded app (``worker.wsgi`` or ``worker.asgi``) with one of these
wrappers, which profile each HTTP request through the same RequestMode. The app itself is unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import TYPE_CHECKING, Any, cast

from ..report import status_code
from .classes import HOOKS, WRAP_ASGI, WRAP_WSGI, facts_of

if TYPE_CHECKING:
    from .request_mode import RequestMode


def wsgi_header(environ: dict[str, Any], name_upper: str) -> str | None:
    """A request header from a WSGI environ, by its upper-case name."""
    key = name_upper.replace("-", "_")
    if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        key = "HTTP_" + key
    value = environ.get(key)
    return None if value is None else str(value)


def asgi_header(scope: dict[str, Any], name_upper: str) -> str | None:
    """A request header from an ASGI scope (byte pairs, lower-case names); a header sent more than
    once gives its values joined by commas, as in a WSGI environ (``selection.header_value``)."""
    wanted = name_upper.lower().encode("latin-1")
    values = [bytes(v).decode("latin-1") for n, v in scope.get("headers") or () if bytes(n).lower() == wanted]
    return ",".join(values) if values else None


def _wsgi_path(environ: dict[str, Any]) -> str:
    # PATH_INFO is already percent-decoded, carried as latin-1 per PEP 3333.
    raw = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
    try:
        return raw.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return raw


class ClosingBody:
    """Passes the body through and ends the profile when the server closes it (PEP 3333),
    so a streamed body is profiled to its end."""

    def __init__(self, body: Iterable[bytes], on_close: Callable[[], None]) -> None:
        self._body = body
        self._on_close: Callable[[], None] | None = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()


class _SizedClosingBody(ClosingBody):
    """The same, for a body with a length (a list): servers that size a body with ``len()``
    (gevent's pywsgi sends Content-Length instead of chunks) must answer as they would unwrapped."""

    def __len__(self) -> int:
        return len(cast(Sized, self._body))


class ProfilingWSGI:
    def __init__(self, app: Callable[..., Any], agent: RequestMode) -> None:
        self.app = app
        self.agent = agent

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        active = self.agent.begin(
            str(environ.get("REQUEST_METHOD", "")),
            _wsgi_path(environ),
            lambda name: wsgi_header(environ, name),
            lambda: str(environ.get("QUERY_STRING", "")),
        )
        if active is None:
            return self.app(environ, start_response)
        status: list[str] = []

        def recording_start_response(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status[:] = [status_line]
            return start_response(status_line, headers, exc_info)

        def finish() -> None:
            self.agent.end(active, status_code(status[0]) if status else 500)

        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            finish()
            raise
        wrapper = _SizedClosingBody if isinstance(body, Sized) else ClosingBody
        return wrapper(body, finish)


class ProfilingASGI:
    """ASGI 3 middleware: profiles ``http`` scopes; lifespan and websocket pass through untouched."""

    def __init__(self, app: Callable[..., Any], agent: RequestMode) -> None:
        self.app = app
        self.agent = agent

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return

        status: list[int] = []

        async def recording_send(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                status[:] = [int(message.get("status", 0))]
            await send(message)

        request = self.app(scope, receive, recording_send)
        # ASGI paths are already percent-decoded.
        active = self.agent.begin(
            str(scope.get("method", "")),
            str(scope.get("path", "")),
            lambda name: asgi_header(scope, name),
            lambda: bytes(scope.get("query_string") or b"").decode("latin-1"),
            request,
            sys._getframe(),
        )
        if active is None:
            await request
            return
        try:
            await request
        finally:
            # No response started means the app raised: the server answers 500.
            self.agent.end(active, status[0] if status else 500)


class TickingASGI:
    """Per-worker mode under UvicornWorker: turn the window over after each HTTP request. Its
    heartbeat (where windows turn over) comes only every ``--timeout``/2 seconds, 15 s by
    default; requests end on the same thread, so a busy worker's windows stay on time."""

    def __init__(self, app: Callable[..., Any], tick: Callable[[], None]) -> None:
        self.app = app
        self.tick = tick

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope.get("type") == "http":
                self.tick()  # never raises: WorkerMode.tick guards itself


#: A worker whose app cannot be wrapped: a native tornado app is no WSGI callable.
UNSUPPORTED = "unsupported"


def front_end_for(worker: Any) -> str:
    """How this worker's requests are reached (``classes.py``), given the app it loaded."""
    front_end = facts_of(worker).front_end
    if front_end == WRAP_WSGI and _is_tornado_app(getattr(worker, "wsgi", None)):
        return UNSUPPORTED
    return front_end


def _is_tornado_app(app: object) -> bool:
    try:
        import tornado.web
        import tornado.wsgi
    except ImportError:
        return False
    return isinstance(app, tornado.web.Application | tornado.wsgi.WSGIContainer)


def attach(worker: Any, agent: RequestMode) -> str:
    """Connect the agent to the worker's requests; returns the front-end used."""
    front_end = front_end_for(worker)
    agent.hooks_enabled = front_end == HOOKS
    if front_end == WRAP_WSGI:
        worker.wsgi = ProfilingWSGI(worker.wsgi, agent)
    elif front_end == WRAP_ASGI:
        attr = "asgi" if hasattr(worker, "asgi") else "wsgi"
        setattr(worker, attr, ProfilingASGI(getattr(worker, attr), agent))
    return front_end
