"""A WSGI app for ``-k gevent`` whose requests wait on the hub (``tests.apps.gevent_wait_app:app``):

* ``GET /waits/<n>?s=S``: ``wait_in_sleep`` waits S seconds in ``gevent.sleep``, then
  ``wait_for_socket`` waits on a socket read until a greenlet it spawned writes to the other end
  of the socket pair, S seconds later; each measures its own wait (``X-Sleep-Seconds``,
  ``X-Socket-Seconds``). Meanwhile another greenlet runs Python code in small steps.
* ``GET /red/<n>?s=S`` and ``/blue/<n>?s=S``: ``red_waits`` / ``blue_waits`` burn CPU and sleep
  in turns (half of S each), so concurrent requests interleave in the one thread
  (``X-Work-Seconds``).
* ``GET /fast/<n>``: answered at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from urllib.parse import parse_qs

import gevent
import gevent.socket


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(200))


def wait_in_sleep(seconds: float) -> float:
    began = time.perf_counter()
    gevent.sleep(seconds)
    return time.perf_counter() - began


def wait_for_socket(seconds: float) -> float:
    reader, writer = gevent.socket.socketpair()
    try:
        writing = gevent.spawn_later(seconds, writer.sendall, b"!")
        began = time.perf_counter()
        data = reader.recv(1)
        waited = time.perf_counter() - began
        writing.join()
        assert data == b"!"
        return waited
    finally:
        reader.close()
        writer.close()


def meanwhile(done: list[bool]) -> None:
    """Another greenlet's Python work, in small steps, while a request waits (as other requests
    would): the hub then runs more than the one timer or read the request waits for."""
    while not done:
        sum(i * i for i in range(500))
        gevent.sleep(0.002)


def red_waits(seconds: float) -> float:
    began = time.perf_counter()
    for _ in range(4):
        burn(seconds / 8)
        gevent.sleep(seconds / 8)
    return time.perf_counter() - began


def blue_waits(seconds: float) -> float:
    began = time.perf_counter()
    for _ in range(4):
        burn(seconds / 8)
        gevent.sleep(seconds / 8)
    return time.perf_counter() - began


def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
    query = parse_qs(str(environ.get("QUERY_STRING", "")))
    seconds = float(query.get("s", ["0.1"])[0])
    kind = str(environ.get("PATH_INFO", "")).strip("/").split("/")[0]
    measured: dict[str, float] = {}
    status = "200 OK"
    if kind == "waits":
        done: list[bool] = []
        ticking = gevent.spawn(meanwhile, done)
        measured["X-Sleep-Seconds"] = wait_in_sleep(seconds)
        measured["X-Socket-Seconds"] = wait_for_socket(seconds)
        done.append(True)
        ticking.join()
    elif kind == "red":
        measured["X-Work-Seconds"] = red_waits(seconds)
    elif kind == "blue":
        measured["X-Work-Seconds"] = blue_waits(seconds)
    elif kind != "fast":
        status = "404 Not Found"
    body = f"{kind} done\n".encode()
    headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    headers += [(name, f"{value:.6f}") for name, value in measured.items()]
    start_response(status, headers)
    return [body]
