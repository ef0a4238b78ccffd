"""asyncio's own hand-overs, in a raw ASGI app under ``-k asgi`` and UvicornWorker, both engines:
``loop.run_in_executor`` with the default executor and with a ThreadPoolExecutor of the app's own,
and ``asyncio.to_thread``. The request's report must show each function that ran in a thread,
timed within 15 % of what it measured itself; concurrent requests in the same executor each get
only their own work.
"""

from __future__ import annotations

import pytest

from .threadpool_checks import Requests, SharedChecks, asgi_served, assert_timed

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
REQUESTS = Requests("fast", ["/all/{n}?s=0.08"], ROUNDS, CONCURRENT)


served = asgi_served("asyncio", APP, REQUESTS)


@pytest.mark.parametrize("way", WAYS)
def test_thread_work_is_timed(served, way):
    header, function = WAYS[way]
    for n in ROUNDS:
        path = f"/all/{n}"
        assert_timed(served.session(path), served.reply(path).seconds(header), function)


class TestShared(SharedChecks):
    sent = REQUESTS
    own_and_other = OWN_AND_OTHER
