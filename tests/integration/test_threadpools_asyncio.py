"""asyncio's own hand-overs, in a raw ASGI app under ``-k asgi`` and UvicornWorker, both engines:
``loop.run_in_executor`` with the default executor and with a ThreadPoolExecutor of the app's own,
and ``asyncio.to_thread``. The request's report must show each function that ran in a thread,
timed within 15 % of what it measured itself; concurrent requests in the same executor each get
only their own work.

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

APP = "tests.apps.threadpool_app:app"
#: Each way of handing over, by the header with the app's measure: the function that burns.
WAYS = {
    "run_in_executor(None)": ("X-Executor-Seconds", "executor_work"),
    "run_in_executor(custom pool)": ("X-Custom-Seconds", "custom_pool_work"),
    "to_thread": ("X-To-Thread-Seconds", "to_thread_work"),
}
ROUNDS = (1, 2)
CONCURRENT = [f"/{colour}/{n}?s=0.1" for n in (11, 12, 13) for colour in ("red", "blue")]
OWN_AND_OTHER = {
    "red": ("red_thread_work", "blue_thread_work"),
    "blue": ("blue_thread_work", "red_thread_work"),
}


@pytest.fixture(scope="module", params=ASGI_CASES)
def served(request, tmp_path_factory) -> Iterator[Served]:
    worker, engine = request.param
    skip_unless_worker_exists(worker)
    report_dir = tmp_path_factory.mktemp("asyncio") / "reports"
    with module_gunicorn(tmp_path_factory) as factory:
        server = start(factory, report_dir, ["-k", worker, "-w", "1"], APP, engine)
        replies = [fetch(server.url, "/fast/0")]
        for n in ROUNDS:
            replies.append(fetch(server.url, f"/all/{n}?s=0.08"))
            replies.append(fetch(server.url, f"/fast/{n}"))
        replies += fetch_all(server.url, CONCURRENT)
        yield finish(server, engine, report_dir, replies)


def test_the_reports_are_made_by_the_engine_asked_for(served):
    check_made_by_the_engine(served)


def test_only_slow_requests_are_kept(served):
    check_only_slow_requests_kept(served)


@pytest.mark.parametrize("way", WAYS)
def test_thread_work_is_timed(served, way):
    header, function = WAYS[way]
    for n in ROUNDS:
        path = f"/all/{n}"
        assert_timed(served.session(path), served.reply(path).seconds(header), function)


def test_concurrent_requests_hold_none_of_the_others_work(served):
    check_none_of_the_others(served, OWN_AND_OTHER)


def test_concurrent_requests_each_hold_their_own_work(served):
    check_each_has_its_own(served, OWN_AND_OTHER)
