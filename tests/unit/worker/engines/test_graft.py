"""graft: a request's pool jobs put where the request waited for them, the total unchanged."""

from __future__ import annotations

import pytest

from gunicorn_pyinstrument.worker.engines.graft import graft
from gunicorn_pyinstrument.worker.engines.handover import Job

ROOT = "MainThread\x00<thread>\x001"
HANDLER = "handler\x00app.py\x0010"


def job_from(t0: float, t1: float, seconds: float) -> Job:
    job = Job(None, None, [ROOT, HANDLER], "")  # type: ignore[arg-type]
    job.t0, job.t1 = t0, t1
    job.records = [(["job\x00app.py\x0020"], seconds)]
    return job


@pytest.mark.parametrize("wait", ["[await]", "[out-of-context]"])
def test_the_job_takes_the_place_of_the_wait(wait):
    """Strict mode shows the request suspended as ``[await]``, or as ``[out-of-context]`` when it
    did not see it await: either way the request was waiting, and its job goes there."""
    records = [([ROOT, HANDLER], 0.01), ([ROOT, wait], 0.1)]
    grafted = graft(records, 0.0, [job_from(0.01, 0.11, 0.1)])
    assert [(stack[-1].split("\x00")[0], round(seconds, 6)) for stack, seconds in grafted] == [
        ("handler", 0.01),
        ("job", 0.1),
    ]
    assert grafted[1][0][:2] == [ROOT, HANDLER]  # under the call that handed it over


def test_work_is_never_replaced():
    records = [([ROOT, HANDLER], 0.1)]
    assert graft(records, 0.0, [job_from(0.0, 0.1, 0.1)]) == records
