"""gevent (``-k gevent``, a WSGI app), both engines: a request that waits on the hub, in
``gevent.sleep`` and in a socket read, must have that time in its report where it waited (a frame
of the app's waiting function carries at least 85 % of the wait it measured), not only as time
switched out; and concurrent requests, interleaving in the one thread, each get only their own work.

One server per engine (a module-scoped fixture sends every request and stops it); each test checks
one thing in its reports.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .threadpool_checks import (
    ENGINES,
    Served,
    check_each_has_its_own,
    check_made_by_the_engine,
    check_none_of_the_others,
    check_only_slow_requests_kept,
    fetch,
    fetch_all,
    finish,
    module_gunicorn,
    seconds_in,
    start,
    summary,
)

APP = "tests.apps.gevent_wait_app:app"
WORKER = ["-k", "gevent", "--worker-connections", "50", "-w", "1"]
#: Of the wait the app measured, what its waiting function must carry in the report at least.
WAIT_SHARE = 0.85
WAITS = {
    "gevent.sleep": ("X-Sleep-Seconds", "wait_in_sleep"),
    "socket": ("X-Socket-Seconds", "wait_for_socket"),
}
ROUNDS = (1, 2)
CONCURRENT = [f"/{colour}/{n}?s=0.16" for n in (11, 12, 13) for colour in ("red", "blue")]
OWN_AND_OTHER = {"red": ("red_waits", "blue_waits"), "blue": ("blue_waits", "red_waits")}


@pytest.fixture(scope="module", params=list(ENGINES))
def served(request, tmp_path_factory) -> Iterator[Served]:
    engine = request.param
    report_dir = tmp_path_factory.mktemp("gevent") / "reports"
    with module_gunicorn(tmp_path_factory) as factory:
        server = start(factory, report_dir, WORKER, APP, engine)
        replies = [fetch(server.url, "/fast/0")]
        for n in ROUNDS:
            replies.append(fetch(server.url, f"/waits/{n}?s=0.1"))
            replies.append(fetch(server.url, f"/fast/{n}"))
        replies += fetch_all(server.url, CONCURRENT)
        yield finish(server, engine, report_dir, replies)


def test_the_reports_are_made_by_the_engine_asked_for(served):
    check_made_by_the_engine(served)


def test_only_slow_requests_are_kept(served):
    check_only_slow_requests_kept(served)


@pytest.mark.parametrize("wait", WAITS)
def test_the_wait_is_where_it_waited(served, wait):
    header, function = WAITS[wait]
    for n in ROUNDS:
        path = f"/waits/{n}"
        session = served.session(path)
        waited = served.reply(path).seconds(header)
        reported = seconds_in(session, function)
        assert WAIT_SHARE * waited <= reported <= served.record(path)["duration"], (
            f"{function}: {reported * 1000:.1f} ms in the report, {waited * 1000:.1f} ms waited; "
            f"the report's heaviest stacks:\n{summary(session)}"
        )


def test_concurrent_requests_hold_none_of_the_others_work(served):
    check_none_of_the_others(served, OWN_AND_OTHER)


def test_concurrent_requests_each_hold_their_own_work(served):
    check_each_has_its_own(served, OWN_AND_OTHER)
