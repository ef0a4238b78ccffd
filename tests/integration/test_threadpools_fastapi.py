"""FastAPI's thread pool, under ``-k asgi`` and UvicornWorker, both engines: a ``def`` endpoint, a
``def`` dependency and an ``async def`` endpoint calling ``run_in_threadpool`` each burn CPU in a
function of their own, in anyio's worker threads. The request's report must show that function,
timed within 15 % of what it measured itself, under the hand-over (``run_in_threadpool`` on the
stack above it); and concurrent ``def`` requests each get only their own work.
"""

from __future__ import annotations

import pytest

from .threadpool_checks import Requests, SharedChecks, asgi_served, assert_timed

APP = "tests.apps.fastapi_app:app"

#: Per route: the request (``{n}``: its number), the header with the app's measure, and the chain
#: of functions from the hand-over down to the burner (the endpoint is above run_in_threadpool when
#: it hands over itself, below it when FastAPI does).
ROUTES = {
    "def-endpoint": (
        "/pool/red/{n}?s=0.1",
        "X-Work-Seconds",
        ("run_in_threadpool", "red_pool_endpoint", "red_pool_work"),
    ),
    "def-dependency": (
        "/pool/depends/{n}?ds=0.1",
        "X-Dependency-Seconds",
        ("run_in_threadpool", "pool_dependency", "dependency_pool_work"),
    ),
    "run_in_threadpool": (
        "/pool/offload/{n}?s=0.1",
        "X-Work-Seconds",
        ("offload_endpoint", "run_in_threadpool", "offloaded_pool_work"),
    ),
}
ROUNDS = (1, 2)
#: Sent all at once: three ``def`` requests burning red_pool_work, three burning blue_pool_work.
CONCURRENT = [f"/pool/{color}/{n}?s=0.1" for n in (11, 12, 13) for color in ("red", "blue")]
OWN_AND_OTHER = {
    "pool/red": ("red_pool_work", "blue_pool_work"),
    "pool/blue": ("blue_pool_work", "red_pool_work"),
}
REQUESTS = Requests("pool/fast", [target for target, _, _ in ROUTES.values()], ROUNDS, CONCURRENT)


def bare(target: str) -> str:
    return target.partition("?")[0]


served = asgi_served("fastapi", APP, REQUESTS)


@pytest.mark.parametrize("route", ROUTES)
def test_pool_work_is_timed(served, route):
    target, header, chain = ROUTES[route]
    for n in ROUNDS:
        path = bare(target.format(n=n))
        assert_timed(served.session(path), served.reply(path).seconds(header), chain[-1])


@pytest.mark.parametrize("route", ROUTES)
def test_pool_work_is_under_the_hand_over(served, route):
    target, header, chain = ROUTES[route]
    for n in ROUNDS:
        path = bare(target.format(n=n))
        assert_timed(served.session(path), served.reply(path).seconds(header), *chain)


class TestShared(SharedChecks):
    sent = REQUESTS
    own_and_other = OWN_AND_OTHER
