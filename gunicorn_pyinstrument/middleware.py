"""ProfilerMiddleware: the same per-request reports for a WSGI or an ASGI app, under any server.

    app.wsgi_app = ProfilerMiddleware(app.wsgi_app)   # Flask
    app = ProfilerMiddleware(app)                     # any WSGI or ASGI app

Configured by the same ``GUNICORN_PYINSTRUMENT_*`` variables, read and checked when the first one
is made (a bad value raises SettingError, with the line gunicorn would print), and switched off by
the same switch: ProfilerMiddleware(app) is then the app itself. Each request goes through the
RequestMode and the app wrappers that serve gunicorn's workers without request hooks
(``worker/wrappers.py``), so reports, metadata and the catalog are the same; the process's state is
made on its first request (``worker/process_state.py``). When the settings need the helper process,
each process looks on its first request, and every 30 s after, whether one serves the directory,
and starts one when none does (``helper/lock.py``). Under gunicorn with the plugin's hooks, the
hooks profile the requests and the middleware steps aside.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .settings import Settings, load

if TYPE_CHECKING:
    from .helper.process import HelperProcess
    from .worker.request_mode import RequestMode

_settings: Settings | None = None
_keep_up: Callable[[], None] | None = None


def checked_settings() -> Settings:
    """Every setting, read and checked once per process, as gunicorn's master does at start-up: a
    bad value (or a report directory that cannot be written) raises SettingError, one line."""
    global _settings, _keep_up
    if _settings is None:
        settings = load()
        if settings.enabled:
            from .helper.process import helper_for
            from .hooks import prepare_directory, prepare_upload

            prepare_directory(settings)
            prepare_upload(settings)
            helper = helper_for(settings, exclusive=True)
            _keep_up = None if helper is None else HelperKeeper(helper)
        _settings = settings
    return _settings


def keep_up() -> Callable[[], None] | None:
    """What each process runs on its first request and every 30 s after (None: nothing to do)."""
    return _keep_up


class HelperKeeper:
    """Starts the helper process when none serves the directory: not this process's (still
    running), nor another's (it holds the directory's lock)."""

    def __init__(self, helper: HelperProcess) -> None:
        self.helper = helper

    def __call__(self) -> None:
        from .helper.lock import held

        if self.helper.running() or held(self.helper.directory):
            return
        if not _is_python(sys.executable):
            # uWSGI's sys.executable is uwsgi itself, a frozen app's the app: never start those.
            raise RuntimeError(
                f"{sys.executable!r} is not a Python interpreter; run "
                f"`python -m gunicorn_pyinstrument.helper {self.helper.directory}` beside the server"
            )
        self.helper.start()  # it serves the directory if it takes the lock first, else exits


def _is_python(executable: str) -> bool:
    name = os.path.basename(executable).lower()
    return "python" in name or "pypy" in name


def is_asgi(app: Any) -> bool:
    """An ASGI 3 app is a coroutine function, or an object whose ``__call__`` is one."""
    for func in (app, inspect.getattr_static(type(app), "__call__", None)):
        if inspect.iscoroutinefunction(func):
            return True
        # asgiref's markcoroutinefunction before Python 3.12 (Django's async middleware and handlers)
        marker = getattr(asyncio.coroutines, "_is_coroutine", None)
        if marker is not None and getattr(func, "_is_coroutine", None) is marker:
            return True
    return False


class ProfilerMiddleware:
    """Profiles the requests of a WSGI or an ASGI app, told apart by :func:`is_asgi`; with
    profiling off, the app itself is returned. ``WSGIProfilerMiddleware`` and
    ``ASGIProfilerMiddleware`` say which, for an app that looks like the other kind."""

    app: Any
    settings: Settings

    def __new__(cls, app: Any) -> Any:
        if not checked_settings().enabled or isinstance(app, ProfilerMiddleware):
            return app  # off; or wrapped already, and a request is profiled once
        if cls is ProfilerMiddleware:
            cls = ASGIProfilerMiddleware if is_asgi(app) else WSGIProfilerMiddleware
        return super().__new__(cls)

    def __init__(self, app: Any) -> None:
        if app is self:
            return  # returned as it was by __new__
        self.app = app
        self.settings = checked_settings()
        self._wrapped: Any = None
        # Imported now that profiling is on: off, nothing of the worker side is imported.
        self._mode, self._make = self._front_end()

    def _front_end(self) -> tuple[Callable[[], RequestMode | None], Callable[[Any, RequestMode], Any]]:
        """This process's RequestMode for the kind of app (None where the hooks profile), and the
        app wrapper that feeds it."""
        raise NotImplementedError

    def _wrapper(self, mode: RequestMode) -> Any:
        # One wrapper per process: a forked process has a RequestMode of its own.
        wrapped = self._wrapped
        if wrapped is None or wrapped.agent is not mode:
            wrapped = self._wrapped = self._make(self.app, mode)
        return wrapped

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.app!r})"


class WSGIProfilerMiddleware(ProfilerMiddleware):
    """Profiles each request of a WSGI app, to the end of its body."""

    def _front_end(self) -> tuple[Callable[[], RequestMode | None], Callable[[Any, RequestMode], Any]]:
        from .worker.process_state import WSGI_MIDDLEWARE, request_mode
        from .worker.wrappers import ProfilingWSGI

        return functools.partial(request_mode, self.settings, WSGI_MIDDLEWARE, _keep_up), ProfilingWSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        mode = self._mode()
        if mode is None:
            return self.app(environ, start_response)
        return self._wrapper(mode)(environ, start_response)


class ASGIProfilerMiddleware(ProfilerMiddleware):
    """Profiles each HTTP request of an ASGI 3 app; lifespan and websocket pass through."""

    def _front_end(self) -> tuple[Callable[[], RequestMode | None], Callable[[Any, RequestMode], Any]]:
        from .worker.process_state import ASGI_MIDDLEWARE, request_mode
        from .worker.wrappers import ProfilingASGI

        return functools.partial(request_mode, self.settings, ASGI_MIDDLEWARE, _keep_up), ProfilingASGI

    async def __call__(
        self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
    ) -> None:
        mode = self._mode() if scope.get("type") == "http" else None
        if mode is None:
            await self.app(scope, receive, send)
            return
        await self._wrapper(mode)(scope, receive, send)
