"""A trivial app, WSGI (``app``) and ASGI (``asgi_app``), whose answer is a function of the request
alone: the method, the path as the server decoded it, the raw target and the query string. So the
same request gives the same bytes from any server running it, with the plugin on or off; and a
request is fast, so a load test measures the plugin and the server, not the app. Paths under
``/sleep/`` wait 0.1 s first (the WSGI app only), to hold a worker's threads busy at once; paths
under ``/no-length/`` are answered without a Content-Length, leaving it to the server."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any


def echo(method: str, path: str, raw: str, query: str) -> bytes:
    return f"app {method} path={path!r} raw={raw!r} query={query!r}\n".encode("utf-8", "backslashreplace")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if str(environ.get("PATH_INFO", "")).startswith("/sleep/"):
        time.sleep(0.1)
    body = echo(
        str(environ.get("REQUEST_METHOD", "")),
        str(environ.get("PATH_INFO", "")),
        str(environ.get("RAW_URI", "")),
        str(environ.get("QUERY_STRING", "")),
    )
    headers = [("Content-Type", "text/plain")]
    if not str(environ.get("PATH_INFO", "")).startswith("/no-length/"):
        headers.append(("Content-Length", str(len(body))))
    start_response("200 OK", headers)
    return [body]


async def asgi_app(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[dict[str, Any]]],
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    body = echo(
        str(scope.get("method", "")),
        str(scope.get("path", "")),
        bytes(scope.get("raw_path") or b"").decode("latin-1"),
        bytes(scope.get("query_string") or b"").decode("latin-1"),
    )
    headers = [(b"content-type", b"text/plain")]
    if not str(scope.get("path", "")).startswith("/no-length/"):
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
