"""A WSGI app whose samples are dear or cheap at will, for the sampler's budget.

``/deep?s=S&depth=D`` burns CPU for S seconds at the bottom of D frames of its own: every sample of
it walks them all. ``/idle?s=S`` sleeps S seconds near the top of the stack: the worker is idle.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs

# Deep enough for a few thousand frames of /deep under gunicorn's own.
sys.setrecursionlimit(10_000)


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(200))


def descend(depth: int, seconds: float) -> None:
    if depth <= 1:
        burn(seconds)
    else:
        descend(depth - 1, seconds)


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    seconds = float(query.get("s", ["0.5"])[0])
    path = environ.get("PATH_INFO")
    if path == "/deep":
        descend(int(query.get("depth", ["1000"])[0]), seconds)
    elif path == "/idle":
        time.sleep(seconds)
    body = f"{path} done\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
