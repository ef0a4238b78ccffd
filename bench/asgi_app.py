"""The benchmark app for the ASGI workers: bench/app.py's endpoints as a FastAPI app.

``/work`` does the same Python work as bench/app.py's Flask view (the same helpers, imported from
it, and the same Jinja template, rendered with autoescaping as Flask does), in an ``async def``
route, so that it runs on the event loop's thread (a plain ``def`` route would run in FastAPI's
thread pool). ``/ping`` is the trivial endpoint.
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


@app.get("/work")
async def work() -> dict[str, Any]:
    items = [make_item(i) for i in range(200)]
    payload = json.dumps(items, sort_keys=True)
    decoded = json.loads(payload)
    nodes = count_nodes(tree(9))
    html = template.render(rows=decoded[:60])
    return {"items": len(decoded), "bytes": len(payload), "nodes": nodes, "fib": fib(16), "html": len(html)}


@app.get("/ping")
async def ping() -> PlainTextResponse:
    return PlainTextResponse("ok")
