"""FastAPI's thread pool, under ``-k asgi`` and UvicornWorker, both engines: a ``def`` endpoint, a
``def`` dependency and an ``async def`` endpoint calling ``run_in_threadpool`` each burn CPU in a
function of their own, in anyio's worker threads. The request's report must show that function,
timed within 15 % of what it measured itself, under the hand-over (``run_in_threadpool`` on the
stack above it); and concurrent ``def`` requests each get only their own work.

One server per worker class × engine (a module-scoped fixture sends every request and stops it);
each test checks one thing in its reports.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .threadpool_checks import (
    ASGI_CASES,
    Served,
    assert_timed,
    check_each_has_its_own,
    check_made_by_the_engine,
    check_none_of_the_others,
    check_only_slow_requests_kept,
    fetch,
    fetch_all,
    finish,
    module_gunicorn,
    skip_unless_worker_exists,
    start,
)

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


def bare(target: str) -> str:
    return target.partition("?")[0]


@pytest.fixture(scope="module", params=ASGI_CASES)
def served(request, tmp_path_factory) -> Iterator[Served]:
    worker, engine = request.param
    skip_unless_worker_exists(worker)
    report_dir = tmp_path_factory.mktemp("fastapi") / "reports"
    with module_gunicorn(tmp_path_factory) as factory:
        server = start(factory, report_dir, ["-k", worker, "-w", "1"], APP, engine)
        replies = [fetch(server.url, "/pool/fast/0")]
        for n in ROUNDS:
            for target, _, _ in ROUTES.values():
                replies.append(fetch(server.url, target.format(n=n)))
            replies.append(fetch(server.url, f"/pool/fast/{n}"))
        replies += fetch_all(server.url, CONCURRENT)
        yield finish(server, engine, report_dir, replies)


def test_the_reports_are_made_by_the_engine_asked_for(served):
    check_made_by_the_engine(served)


def test_only_slow_requests_are_kept(served):
    check_only_slow_requests_kept(served, "pool/fast")


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


def test_concurrent_def_requests_hold_none_of_the_others_work(served):
    check_none_of_the_others(served, OWN_AND_OTHER)


def test_concurrent_def_requests_each_hold_their_own_work(served):
    check_each_has_its_own(served, OWN_AND_OTHER)
