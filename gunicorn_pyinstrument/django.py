"""Django's ProfilerMiddleware, for the MIDDLEWARE list, for sync and async views alike.

    MIDDLEWARE = ["gunicorn_pyinstrument.django.ProfilerMiddleware", ...]

The same settings, checks, reports and helper process as ``gunicorn_pyinstrument.ProfilerMiddleware``
(``middleware.py``); it only reads the request from Django's ``HttpRequest``. Placed first, a report
covers every middleware after it and the view. Django runs it synchronously under WSGI and
asynchronously under ASGI, so no thread hop is added either way. With profiling off it raises
MiddlewareNotUsed and Django leaves it out; under gunicorn with the plugin's hooks it steps aside.

A streamed response (``StreamingHttpResponse``, ``FileResponse``) is profiled to the end of its body
under WSGI; under ASGI, until the view has returned it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.core.exceptions import MiddlewareNotUsed

from .middleware import checked_settings, keep_up
from .worker.process_state import DJANGO_ASYNC_MIDDLEWARE, DJANGO_MIDDLEWARE, request_mode
from .worker.request_mode import Active, RequestMode
from .worker.wrappers import ClosingBody, wsgi_header


class ProfilerMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        settings = checked_settings()  # a bad value raises here, when Django loads its middleware
        if not settings.enabled:
            raise MiddlewareNotUsed("GUNICORN_PYINSTRUMENT is off")
        self.get_response = get_response
        self.settings = settings
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        if self.is_async:
            return self._acall(request)
        mode = request_mode(self.settings, DJANGO_MIDDLEWARE, keep_up())
        active = _begin(mode, request) if mode is not None else None
        if mode is None or active is None:
            return self.get_response(request)
        try:
            response = self.get_response(request)
        except BaseException:
            mode.end(active, 500)
            raise
        if response.streaming and not getattr(response, "is_async", False):
            # The server reads the body on this thread after this call, then closes the response:
            # the profile ends there (Django closes what streaming_content is set to).
            response.streaming_content = ClosingBody(
                response.streaming_content, lambda: mode.end(active, response.status_code)
            )
        else:
            mode.end(active, response.status_code)
        return response

    async def _acall(self, request: Any) -> Any:
        mode = request_mode(self.settings, DJANGO_ASYNC_MIDDLEWARE, keep_up())
        if mode is None:
            return await self.get_response(request)
        coroutine = self.get_response(request)
        active = _begin(mode, request, coroutine, sys._getframe())
        if active is None:
            return await coroutine
        status = 500  # what Django answers when the coroutine raises through here
        try:
            response = await coroutine
            status = response.status_code
            return response
        finally:
            mode.end(active, status)


def _begin(mode: RequestMode, request: Any, coroutine: Any = None, frame: Any = None) -> Active | None:
    meta = request.META
    return mode.begin(
        str(request.method or ""),
        str(request.path),  # percent-decoded, as the path filters expect
        lambda name: wsgi_header(meta, name),  # META holds the headers as a WSGI environ does
        lambda: str(meta.get("QUERY_STRING", "")),
        coroutine,
        frame,
    )
