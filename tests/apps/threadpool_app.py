"""A raw ASGI app whose requests hand their work to threads through asyncio
(``tests.apps.threadpool_app:app``), each way burning CPU in a function of its own:

* ``GET /all/<n>?s=S``: ``loop.run_in_executor(None, executor_work)`` (the loop's default executor),
  ``loop.run_in_executor(CUSTOM_POOL, custom_pool_work)`` (a ThreadPoolExecutor of the app's own)
  and ``asyncio.to_thread(to_thread_work)``, one after the other, S seconds each; the seconds each
  function measured itself are in ``X-Executor-Seconds``, ``X-Custom-Seconds``, ``X-To-Thread-Seconds``.
* ``GET /red/<n>?s=S`` and ``/blue/<n>?s=S``: ``red_thread_work`` / ``blue_thread_work`` in the
  default executor, for concurrent requests (``X-Work-Seconds``).
* ``GET /fast/<n>``: a hand-over of nothing (``asyncio.to_thread``), answered at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs

CUSTOM_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="custom-pool")


def burn(seconds: float) -> float:
    began = time.perf_counter()
    end = began + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(200))
    return time.perf_counter() - began


def executor_work(seconds: float) -> float:
    return burn(seconds)


def custom_pool_work(seconds: float) -> float:
    return burn(seconds)


def to_thread_work(seconds: float) -> float:
    return burn(seconds)


def red_thread_work(seconds: float) -> float:
    return burn(seconds)


def blue_thread_work(seconds: float) -> float:
    return burn(seconds)


def nothing() -> None:
    return None


async def hand_over_every_way(seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    return {
        "X-Executor-Seconds": await loop.run_in_executor(None, executor_work, seconds),
        "X-Custom-Seconds": await loop.run_in_executor(CUSTOM_POOL, custom_pool_work, seconds),
        "X-To-Thread-Seconds": await asyncio.to_thread(to_thread_work, seconds),
    }


async def hand_over_colour(work: Callable[[float], float], seconds: float) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    return {"X-Work-Seconds": await loop.run_in_executor(None, work, seconds)}


async def lifespan(receive: Callable[[], Awaitable[dict[str, Any]]], send: Callable[..., Any]) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] == "lifespan":
        await lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    query = parse_qs(bytes(scope.get("query_string") or b"").decode("latin-1"))
    seconds = float(query.get("s", ["0.1"])[0])
    kind = str(scope["path"]).strip("/").split("/")[0]
    status, measured = 200, {}
    if kind == "all":
        measured = await hand_over_every_way(seconds)
    elif kind == "red":
        measured = await hand_over_colour(red_thread_work, seconds)
    elif kind == "blue":
        measured = await hand_over_colour(blue_thread_work, seconds)
    elif kind == "fast":
        await asyncio.to_thread(nothing)
    else:
        status = 404
    body = f"{kind} done\n".encode()
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), f"{value:.6f}".encode()) for name, value in measured.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
