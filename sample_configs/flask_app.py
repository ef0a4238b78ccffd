"""A small Flask app whose endpoints each do recognisable work, to see in a profile.

    GUNICORN_PYINSTRUMENT=1 gunicorn -c python:gunicorn_pyinstrument.config sample_configs.flask_app:app

| endpoint   | what it does                                            | what the report shows              |
|------------|---------------------------------------------------------|------------------------------------|
| `/`        | returns a line of text                                  | almost nothing: Flask's own cost   |
| `/compute` | counts primes and hashes a JSON document (pure Python)  | `count_primes`, `checksum_report`  |
| `/slow`    | waits on a simulated slow backend (`time.sleep`)        | time spent in `query_slow_backend` |
| `/error`   | raises `ValueError` (the client gets a 500)             | a report with status 500           |
| `/stream`  | streams lines, computing each one as it is sent         | `render_rows`, up to the last line |

`/compute?n=...`, `/slow?s=...` and `/stream?rows=...` change the amount of work.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator

from flask import Flask, Response, request

app = Flask(__name__)


def count_primes(limit: int) -> int:
    """Trial division on purpose: slow, pure-Python work that shows up clearly in a profile."""
    count = 0
    for n in range(2, limit):
        if all(n % d for d in range(2, int(n**0.5) + 1)):
            count += 1
    return count


def checksum_report(values: list[int]) -> str:
    document = json.dumps({"values": values, "total": sum(values)}, sort_keys=True)
    return hashlib.sha256(document.encode()).hexdigest()


def query_slow_backend(seconds: float) -> dict[str, float]:
    """Stands for a database or HTTP call: the worker waits and uses no CPU."""
    time.sleep(seconds)
    return {"waited": seconds}


def render_rows(rows: int) -> Iterator[str]:
    for i in range(rows):
        yield f"row {i}: {count_primes(3_000 + 100 * i)} primes\n"


@app.route("/")
def index() -> str:
    return "gunicorn-pyinstrument sample app: try /compute, /slow, /error, /stream\n"


@app.route("/compute")
def compute() -> dict[str, object]:
    limit = min(int(request.args.get("n", "40000")), 500_000)
    primes = [count_primes(limit // 4 * k) for k in range(1, 5)]
    return {"limit": limit, "primes": primes, "checksum": checksum_report(primes)}


@app.route("/slow")
def slow() -> dict[str, float]:
    seconds = min(float(request.args.get("s", "0.3")), 5.0)
    return query_slow_backend(seconds)


@app.route("/error")
def error() -> str:
    raise ValueError("this endpoint always fails")


@app.route("/stream")
def stream() -> Response:
    rows = min(int(request.args.get("rows", "20")), 1_000)
    # The profile covers the whole body: gunicorn calls post_request after the last chunk is sent.
    return Response(render_rows(rows), mimetype="text/plain")
