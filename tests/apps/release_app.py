"""A Flask app with two "releases": ``RELEASE_APP_SLOWDOWN`` multiplies the time ``render_page``
spends in its own code, so reports of two runs with different labels differ in one function.
Numeric and UUID ids in the paths, a 404 and a 500, for the command line's tests."""

from __future__ import annotations

import os
import time

from flask import Flask, abort

app = Flask(__name__)

SLOWDOWN = float(os.environ.get("RELEASE_APP_SLOWDOWN", "1"))


def spin(seconds: float) -> int:
    """Busy for ``seconds`` in this function's own code (no builtin takes the time)."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        for i in range(300):
            n += i * i
    return n


def load_user(user_id: int) -> int:
    return spin(0.01) + user_id


def render_page(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        for i in range(300):
            n += i ^ 7
    return n


@app.route("/users/<int:user_id>")
def user(user_id: int) -> str:
    load_user(user_id)
    render_page(0.01 * SLOWDOWN)
    return f"user {user_id}"


@app.route("/orders/<order_id>")
def order(order_id: str) -> str:
    spin(0.005)
    return f"order {order_id}"


@app.route("/health")
def health() -> str:
    return "ok"


@app.route("/missing")
def missing() -> str:
    abort(404)


@app.route("/error")
def error() -> str:
    spin(0.005)
    raise RuntimeError("boom")
