"""bench/asgi_app.py's ``/work`` as a FastAPI ``def`` route: FastAPI runs it in its thread pool
(``run_in_threadpool``, anyio's worker threads), away from the event loop that took the request.
Mirrors the ``/pool`` routes of tests/apps/fastapi_app.py with bench/app.py's few milliseconds of
Python work. ``/ping`` is the trivial endpoint.
"""

from __future__ import annotations

import json
from typing import Any

from app import TEMPLATE, count_nodes, fib, make_item, tree
from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from jinja2 import Environment

app = FastAPI()
template = Environment(autoescape=True).from_string(TEMPLATE)


def pool_work() -> dict[str, Any]:
    items = [make_item(i) for i in range(200)]
    payload = json.dumps(items, sort_keys=True)
    decoded = json.loads(payload)
    nodes = count_nodes(tree(9))
    html = template.render(rows=decoded[:60])
    return {"items": len(decoded), "bytes": len(payload), "nodes": nodes, "fib": fib(16), "html": len(html)}


@app.get("/work")
def work() -> dict[str, Any]:
    return pool_work()


@app.get("/ping")
async def ping() -> PlainTextResponse:
    return PlainTextResponse("ok")
