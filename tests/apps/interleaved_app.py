"""A WSGI app whose CPU burners yield between bursts, so concurrent requests interleave in one
thread under gevent and tornado. Every burner has its own distinct name, to check isolation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(200))


def alpha_work(seconds: float, pause: float) -> None:
    for _ in range(10):
        burn(seconds / 10)
        time.sleep(pause)  # cooperative under gevent: another request runs meanwhile


def beta_work(seconds: float, pause: float) -> None:
    for _ in range(10):
        burn(seconds / 10)
        time.sleep(pause)


def spawned_work(seconds: float) -> None:
    burn(seconds)


def spawning(seconds: float) -> None:
    import gevent

    gevent.spawn(spawned_work, seconds).join()


def stuck_work(seconds: float) -> None:
    burn(seconds)


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    seconds = float(query.get("s", ["0.2"])[0])
    pause = float(query.get("pause", ["0.005"])[0])
    path = environ.get("PATH_INFO")
    began = time.perf_counter()
    if path == "/alpha":
        alpha_work(seconds, pause)
    elif path == "/beta":
        beta_work(seconds, pause)
    elif path == "/spawn":
        spawning(seconds)
    elif path == "/stuck":
        stuck_work(seconds)
    elif path == "/error":
        raise RuntimeError("boom")
    # The work's own wall-clock time: the truth a sampled report is compared with.
    work = f"{time.perf_counter() - began:.6f}"
    body = f"{path} done\n".encode()
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("X-Work-Seconds", work)]
    start_response("200 OK", headers)
    return [body]
