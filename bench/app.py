"""The benchmark app: one Python-heavy endpoint of a few milliseconds and one trivial endpoint.

``/work`` does what a typical view does in pure Python: builds and serializes dicts, walks a small
recursive structure and renders a small Jinja template. It does no I/O, so its cost is all CPU and
every configuration of the benchmark measures the same work. ``/ping`` is the trivial endpoint
(used to check the server is up).
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, render_template_string

app = Flask(__name__)

TEMPLATE = """<table>
{%- for row in rows %}
<tr><td>{{ row.id }}</td><td>{{ row.name|title }}</td><td>{{ "%.2f"|format(row.score) }}</td>
<td>{% for tag in row.tags %}<span>{{ tag }}</span>{% endfor %}</td></tr>
{%- endfor %}
</table>"""


def make_item(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "name": f"item number {i}",
        "score": (i * 7919) % 1000 / 7.0,
        "tags": [f"t{(i + k) % 13}" for k in range(4)],
        "attrs": {f"k{k}": k * i for k in range(6)},
    }


def tree(depth: int) -> dict[str, Any]:
    if depth == 0:
        return {"leaf": True}
    return {"left": tree(depth - 1), "right": tree(depth - 1), "depth": depth}


def count_nodes(node: dict[str, Any]) -> int:
    if node.get("leaf"):
        return 1
    return 1 + count_nodes(node["left"]) + count_nodes(node["right"])


def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@app.route("/work")
def work() -> dict[str, Any]:
    items = [make_item(i) for i in range(200)]
    payload = json.dumps(items, sort_keys=True)
    decoded = json.loads(payload)
    nodes = count_nodes(tree(9))
    html = render_template_string(TEMPLATE, rows=decoded[:60])
    return {"items": len(decoded), "bytes": len(payload), "nodes": nodes, "fib": fib(16), "html": len(html)}


@app.route("/ping")
def ping() -> str:
    return "ok"
