"""A bare WSGI app (no framework) that fails at each point of a response, for the integration tests."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs


def burn(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += sum(i * i for i in range(200))
    return n


def wsgi_work(seconds: float) -> int:
    return burn(seconds)


def fail_before_start() -> None:
    burn(0.03)
    raise RuntimeError("raised before start_response")


def body_then_failure(parts: int) -> Iterator[bytes]:
    for i in range(parts):
        burn(0.01)
        yield b"part %d\n" % i
    raise RuntimeError("raised in the middle of the body")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    if path == "/raise-before-start":
        fail_before_start()
    if path == "/raise-in-body":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body_then_failure(int(query.get("n", ["5"])[0]))
    started = os.environ.get("WSGI_APP_STARTED_FILE")
    if started:  # lets a test know the request is being served
        with open(started, "a") as f:
            f.write(f"{path}\n")
    wsgi_work(float(query.get("s", ["0.05"])[0]))
    body = b"ok\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
