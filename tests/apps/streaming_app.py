"""The interleaved WSGI app plus a streamed body, so each WSGI worker test needs one server only."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from urllib.parse import parse_qs

from tests.apps.interleaved_app import app as interleaved_app
from tests.apps.interleaved_app import burn


def stream_chunks(n: int) -> Iterator[bytes]:
    for i in range(n):
        burn(0.01)
        yield f"chunk {i}\n".encode()


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") == "/stream":
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return stream_chunks(int(query.get("n", ["10"])[0]))
    return interleaved_app(environ, start_response)
