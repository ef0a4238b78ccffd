"""gevent (``-k gevent``, a WSGI app), both engines: a request that waits on the hub, in
``gevent.sleep`` and in a socket read, must have that time in its report where it waited (a frame
of the app's waiting function carries at least 85 % of the wait it measured), not only as time
switched out; and concurrent requests, interleaving in the one thread, each get only their own work.

One server per engine (a module-scoped fixture sends every request and stops it); each test checks
one thing in its reports.
"""

from __future__ import annotations

import pytest

from .threadpool_checks import (
    ENGINES,
    Requests,
    Served,
    SharedChecks,
    seconds_in,
    serve,
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
REQUESTS = Requests("fast", ["/waits/{n}?s=0.1"], ROUNDS, CONCURRENT)


@pytest.fixture(scope="module", params=list(ENGINES))
def served(request, tmp_path_factory) -> Served:
    return serve(tmp_path_factory, "gevent", WORKER, APP, request.param, REQUESTS)


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


class TestShared(SharedChecks):
    sent = REQUESTS
    own_and_other = OWN_AND_OTHER
