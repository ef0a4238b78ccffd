"""A FastAPI app, profiled with no change to it, under gunicorn's own ASGI worker or UvicornWorker.

From the repository root:

    GUNICORN_PYINSTRUMENT=1 gunicorn -c gunicorn_pyinstrument/config.py -k asgi \\
        sample_configs.fastapi_app:app
    GUNICORN_PYINSTRUMENT=1 gunicorn -c gunicorn_pyinstrument/config.py -k uvicorn_worker.UvicornWorker \\
        sample_configs.fastapi_app:app

Neither worker class calls gunicorn's request hooks with what a report needs, so the plugin wraps
the ASGI app in post_worker_init; lifespan and websocket traffic pass through untouched.
Endpoints declared with plain ``def`` run in a thread pool that pyinstrument does not sample: their
time shows as waiting (docs/workers.md).
"""

from __future__ import annotations

import asyncio
import json

from fastapi import FastAPI

app = FastAPI()


def build_catalog(n: int) -> list[dict[str, object]]:
    return [{"id": i, "name": f"item {i}", "tags": [str(i % 7), str(i % 11)]} for i in range(n)]


@app.get("/catalog")
async def catalog(n: int = 2000) -> dict[str, int]:
    payload = json.dumps(build_catalog(n))
    return {"bytes": len(payload)}


@app.get("/slow")
async def slow(seconds: float = 0.3) -> dict[str, float]:
    await asyncio.sleep(seconds)  # shows as [await] in the report
    return {"slept": seconds}
