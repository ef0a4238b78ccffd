"""A FastAPI app for the ASGI workers: interleaving async burners, a sync route that runs in the
thread pool, a streamed body, a request that outlives --timeout, lifespan and a websocket; and under
``/pool/``, work handed to the thread pool by ``def`` endpoints, a ``def`` dependency and an
``async def`` endpoint calling ``run_in_threadpool``, each burning CPU in a function of its own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, WebSocket
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

STATE = {"lifespan": "not started"}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    STATE["lifespan"] = "started"
    yield
    STATE["lifespan"] = "stopped"


app = FastAPI(lifespan=lifespan)


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(200))


async def alpha_work(seconds: float) -> None:
    for _ in range(10):
        burn(seconds / 10)
        await asyncio.sleep(0.005)


async def beta_work(seconds: float) -> None:
    for _ in range(10):
        burn(seconds / 10)
        await asyncio.sleep(0.005)


def sync_work(seconds: float) -> None:
    burn(seconds)


def stuck_work(seconds: float) -> None:
    burn(seconds)


@app.get("/alpha")
async def alpha(s: float = 0.2) -> PlainTextResponse:
    await alpha_work(s)
    return PlainTextResponse("alpha")


@app.get("/beta")
async def beta(s: float = 0.2) -> PlainTextResponse:
    await beta_work(s)
    return PlainTextResponse("beta")


@app.get("/sync")
def sync_route(s: float = 0.2) -> PlainTextResponse:
    sync_work(s)
    return PlainTextResponse("sync")


@app.get("/stuck")
async def stuck(s: float = 10) -> PlainTextResponse:
    stuck_work(s)
    return PlainTextResponse("stuck")


@app.get("/error")
async def error() -> PlainTextResponse:
    raise RuntimeError("boom")


async def stream_chunks(n: int) -> AsyncIterator[bytes]:
    for i in range(n):
        burn(0.01)
        yield f"chunk {i}\n".encode()
        await asyncio.sleep(0)


@app.get("/stream")
async def stream(n: int = 10) -> StreamingResponse:
    return StreamingResponse(stream_chunks(n), media_type="text/plain")


@app.get("/lifespan")
async def lifespan_state() -> PlainTextResponse:
    return PlainTextResponse(STATE["lifespan"])


@app.websocket("/ws")
async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    await websocket.send_text(f"echo {text}")
    await websocket.close()


# --- work handed to the thread pool (tests/integration/test_threadpools_fastapi.py) ---
# Each burner measures itself and returns the seconds; the routes answer them in X-*-Seconds headers.


def timed_burn(seconds: float) -> float:
    began = time.perf_counter()
    burn(seconds)
    return time.perf_counter() - began


def red_pool_work(seconds: float) -> float:
    return timed_burn(seconds)


def blue_pool_work(seconds: float) -> float:
    return timed_burn(seconds)


def dependency_pool_work(seconds: float) -> float:
    return timed_burn(seconds)


def offloaded_pool_work(seconds: float) -> float:
    return timed_burn(seconds)


def timed_reply(text: str, header: str, seconds: float) -> PlainTextResponse:
    return PlainTextResponse(text, headers={header: f"{seconds:.6f}"})


@app.get("/pool/red/{n}")
def red_pool_endpoint(n: int, s: float = 0.1) -> PlainTextResponse:
    """A ``def`` endpoint: FastAPI runs it in the thread pool (run_in_threadpool)."""
    return timed_reply(f"red {n}", "X-Work-Seconds", red_pool_work(s))


@app.get("/pool/blue/{n}")
def blue_pool_endpoint(n: int, s: float = 0.1) -> PlainTextResponse:
    return timed_reply(f"blue {n}", "X-Work-Seconds", blue_pool_work(s))


def pool_dependency(ds: float = 0.1) -> float:
    """A ``def`` dependency: run in the thread pool too, before the endpoint."""
    return dependency_pool_work(ds)


@app.get("/pool/depends/{n}")
async def depends_endpoint(n: int, worked: float = Depends(pool_dependency)) -> PlainTextResponse:
    return timed_reply(f"depends {n}", "X-Dependency-Seconds", worked)


@app.get("/pool/offload/{n}")
async def offload_endpoint(n: int, s: float = 0.1) -> PlainTextResponse:
    """An ``async def`` endpoint that hands its work over itself."""
    worked = await run_in_threadpool(offloaded_pool_work, s)
    return timed_reply(f"offload {n}", "X-Work-Seconds", worked)


@app.get("/pool/fast/{n}")
def fast_pool_endpoint(n: int) -> PlainTextResponse:
    return PlainTextResponse(f"fast {n}")
