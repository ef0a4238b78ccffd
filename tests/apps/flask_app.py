"""A Flask app for the integration tests: named CPU burners, errors, streaming, slow endpoints."""

from __future__ import annotations

import time
from collections.abc import Iterator

from flask import Flask, Response, request

app = Flask(__name__)


def burn(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += sum(i * i for i in range(200))
    return n


def alpha_work(seconds: float) -> int:
    return burn(seconds)


def beta_work(seconds: float) -> int:
    return burn(seconds)


@app.route("/")
def index() -> str:
    return "ok"


@app.route("/alpha")
def alpha() -> str:
    alpha_work(float(request.args.get("s", "0.2")))
    return "alpha"


@app.route("/beta")
def beta() -> str:
    beta_work(float(request.args.get("s", "0.2")))
    return "beta"


@app.route("/sleep")
def sleep() -> str:
    time.sleep(float(request.args.get("s", "0.1")))
    return "slept"


@app.route("/error")
def error() -> str:
    # A few milliseconds of work first: a profiler sampling every millisecond then always sees
    # this function in the report (raising at once, it was seen only when a sample happened to land).
    burn(0.005)
    raise RuntimeError("boom")


def stream_chunks(n: int) -> Iterator[str]:
    for i in range(n):
        burn(0.01)
        yield f"chunk {i}\n"


@app.route("/stream")
def stream() -> Response:
    return Response(stream_chunks(int(request.args.get("n", "10"))), mimetype="text/plain")


@app.route("/users/<int:user_id>")
def user(user_id: int) -> str:
    return f"user {user_id}"


@app.route("/<path:anything>")
def catch_all(anything: str) -> str:
    return "any"
