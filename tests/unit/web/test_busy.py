"""Busy against idle in a per-worker window: the waits of the worker's loop are idle, everything
else (the app's code and its own waits) busy, capped at the window's length."""

from __future__ import annotations

import pytest
from pyinstrument.session import Session

from gunicorn_pyinstrument.aggregate import worker_root
from gunicorn_pyinstrument.web.busy import busy_of, is_wait

ROOT = worker_root(7)
SITE = "/venv/lib/python3.12/site-packages"
RUN = f"run\x00{SITE}/gunicorn/workers/sync.py\x00111"
GEVENT_RUN = f"run\x00{SITE}/gunicorn/workers/ggevent.py\x0080"
HUB_SLEEP = f"sleep\x00{SITE}/gevent/hub.py\x00150"
VIEW = "view\x00/srv/app/views.py\x0010"


@pytest.mark.parametrize(
    ("stack", "waiting"),
    [
        ([ROOT, RUN, "select\x00<built-in>\x000"], True),  # pyinstrument's engine: the C call
        ([ROOT, RUN, "epoll.poll\x00<built-in>\x000"], True),
        ([ROOT, RUN, f"wait\x00{SITE}/gunicorn/workers/sync.py\x0034"], True),  # the sampler's view
        ([ROOT, "select\x00/usr/lib/python3.12/selectors.py\x00451\x01cEpollSelector"], True),
        ([ROOT, GEVENT_RUN, HUB_SLEEP], True),  # gevent's loop between heartbeats
        ([ROOT, VIEW, HUB_SLEEP], False),  # a request's own sleep holds its greenlet
        ([ROOT, RUN, VIEW], False),
        ([ROOT, VIEW, "sleep\x00<built-in>\x000"], False),
        ([ROOT, "wait\x00/usr/lib/python3.12/threading.py\x00300\x01cCondition"], True),
    ],
)
def test_what_counts_as_waiting(stack: list[str], waiting: bool) -> None:
    assert is_wait(stack) is waiting


def window(records: list[tuple[list[str], float]], duration: float) -> Session:
    return Session(
        frame_records=records, start_time=0.0, duration=duration, min_interval=0.001, max_interval=0.001,
        sample_count=len(records), start_call_stack=[ROOT], target_description="window", cpu_time=0.0,
        sys_path=[], sys_prefixes=[],
    )  # fmt: skip


def test_busy_and_idle_add_up_to_the_window() -> None:
    session = window([([ROOT, RUN, VIEW], 0.3), ([ROOT, RUN, "select\x00<built-in>\x000"], 0.65)], 1.0)
    busy = busy_of(session)
    assert busy.busy == pytest.approx(0.3)
    assert busy.idle == pytest.approx(0.7)  # what was not sampled is idle too
    assert busy.share == pytest.approx(0.3)


def test_threads_busy_at_once_are_capped_at_the_window() -> None:
    session = window([([ROOT, VIEW], 0.8), ([ROOT, "other\x00/srv/app/jobs.py\x001", VIEW], 0.7)], 1.0)
    assert busy_of(session, duration=1.0).busy == 1.0
    assert busy_of(session, duration=1.0).idle == 0.0
