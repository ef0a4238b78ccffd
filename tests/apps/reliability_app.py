"""A bare WSGI app for the reliability tests: every answer names its request, so a test can check
the exact body of each response and find the report of each request by its path.

``/work/<id>``            burns ``s`` seconds (default 0.02) in ``work_request``; answers ``work <id>``
``/deep/<id>``            the same ``depth`` calls deep (default 150): large sessions, slow to write
``/raise/<id>``           raises in ``raise_before_response`` before calling start_response
``/raise-midway/<id>``    streams ``n`` parts from ``generator_then_raise``, then raises
``/close-raises/<id>``    a complete body whose iterable's ``close()`` raises
``/stream/<id>``          ``n`` chunks from ``streamed_body``, each after ``s`` seconds of work
``/stuck/<id>``           burns ``s`` seconds (default 30) in ``stuck_request``
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs


def burn(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += sum(i * i for i in range(100))
    return n


def work_request(seconds: float) -> int:
    return burn(seconds)


def deep_call(depth: int, seconds: float) -> int:
    if depth <= 0:
        return burn(seconds)
    return deep_call(depth - 1, seconds) + 1


def stuck_request(seconds: float) -> int:
    return burn(seconds)


def raise_before_response(seconds: float) -> None:
    burn(seconds)
    raise RuntimeError("the app raised before responding")


def generator_then_raise(parts: int, seconds: float) -> Iterator[bytes]:
    for i in range(parts):
        burn(seconds)
        yield b"part %d\n" % i
    raise RuntimeError("the app raised in the middle of its body")


def streamed_body(chunks: int, seconds: float) -> Iterator[bytes]:
    for i in range(chunks):
        burn(seconds)
        yield b"chunk %d\n" % i


class CloseRaises:
    """A complete body whose ``close()`` fails."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self.body

    def close(self) -> None:
        raise RuntimeError("the app's iterable raised in close()")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    _, kind, ident = [*environ.get("PATH_INFO", "").split("/", 2), "", ""][:3]
    query = parse_qs(environ.get("QUERY_STRING", ""))

    def number(name: str, default: float) -> float:
        return float(query.get(name, [default])[0])

    text = [("Content-Type", "text/plain")]
    if kind == "raise":
        raise_before_response(number("s", 0.01))
    if kind == "raise-midway":
        start_response("200 OK", text)
        return generator_then_raise(int(number("n", 3)), number("s", 0.01))
    if kind == "stream":
        start_response("200 OK", text)
        return streamed_body(int(number("n", 100)), number("s", 0.01))
    if kind == "close-raises":
        body = f"close {ident}\n".encode()
        start_response("200 OK", [*text, ("Content-Length", str(len(body)))])
        return CloseRaises(body)
    if kind == "deep":
        deep_call(int(number("depth", 150)), number("s", 0.05))
    elif kind == "stuck":
        stuck_request(number("s", 30))
    elif kind == "work":
        work_request(number("s", 0.02))
    else:
        start_response("404 Not Found", text)
        return [b"not found\n"]
    body = f"{kind} {ident}\n".encode()
    start_response("200 OK", [*text, ("Content-Length", str(len(body)))])
    return [body]
