"""A FastAPI app for the ASGI workers: interleaving async burners, a sync route that runs in the
thread pool, a streamed body, a request that outlives --timeout, lifespan and a websocket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse, StreamingResponse

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
