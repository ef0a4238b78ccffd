"""A request that outlives ``--timeout``: the master aborts the worker, and the plugin writes the
profile of the stuck request in the second before SIGKILL, marked as a timeout."""

from __future__ import annotations

import http.client
import time

import pytest
from support import (
    CONFIG_FILE,
    get,
    load_session,
    metadata_records,
    profiling_env,
    report_functions,
    wait_for_metadata,
)

INTERLEAVED_APP = "tests.apps.interleaved_app:app"
FASTAPI_APP = "tests.apps.fastapi_app:app"

TIMEOUT_WORKERS = {
    "sync": (["-k", "sync"], INTERLEAVED_APP, "SyncWorker", b"/alpha done\n"),
    "gevent": (["-k", "gevent"], INTERLEAVED_APP, "GeventWorker", b"/alpha done\n"),
    "gevent_pywsgi": (["-k", "gevent_pywsgi"], INTERLEAVED_APP, "GeventPyWSGIWorker", b"/alpha done\n"),
    "asgi": (["-k", "asgi"], FASTAPI_APP, "ASGIWorker", b"alpha"),
    "uvicorn": (["-k", "uvicorn_worker.UvicornWorker"], FASTAPI_APP, "UvicornWorker", b"alpha"),
}


def seconds_in(session, function: str) -> float:
    """Sampled time with ``function`` anywhere on the stack."""
    return sum(
        t for stack, t in session.frame_records if any(f.split("\x00", 1)[0] == function for f in stack)
    )


def timeout_records(directory, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        records = [r for r in metadata_records(directory) if r["outcome"] == "timeout"]
        if records or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


@pytest.mark.parametrize("worker", list(TIMEOUT_WORKERS))
def test_timed_out_request_is_written_and_the_worker_replaced(gunicorn, report_dir, worker):
    args, app, worker_class, alpha_body = TIMEOUT_WORKERS[worker]
    env = profiling_env(report_dir, FORMATS="session")
    server = gunicorn("-c", CONFIG_FILE, *args, "-w", "1", "--timeout", "2", app, env=env)
    [first_worker] = server.worker_pids()

    try:
        status, _ = get(server.url + "/stuck?s=30", timeout=20)
    except (OSError, http.client.HTTPException):
        status = None  # the worker was killed under the request: reset or closed connection
    assert status is None or status >= 500, status

    [record] = timeout_records(report_dir)
    assert record["path"] == "/stuck"
    assert record["status"] is None
    assert "_TIMEOUT" in record["name"]
    assert record["worker"]["class"] == worker_class
    assert record["pid"] == first_worker
    # The master counts --timeout (2 s) from the worker's last heartbeat, which may come up to a
    # heartbeat period (1 s on gevent and asyncio) before the request started: so at least 1 s.
    assert record["duration"] >= 1
    session = load_session(report_dir / record["files"]["session"])
    assert session.sample_count == record["samples"]
    # The call tree shows where it was stuck: nearly all of its time in stuck_work.
    assert "stuck_work" in report_functions(report_dir, record)
    assert seconds_in(session, "stuck_work") >= 0.9 * record["duration"]

    # The master replaced the worker, which serves and profiles as usual.
    assert get(server.url + "/alpha?s=0.02", timeout=20) == (200, alpha_body)
    assert len(server.worker_pids()) == 2
    records = wait_for_metadata(report_dir, 2)
    [alpha] = [r for r in records if r["path"] == "/alpha"]
    assert (alpha["status"], alpha["outcome"]) == (200, "complete")
    assert alpha["pid"] != first_worker
    assert server.stop() == 0


def test_gthread_slow_request_is_not_timed_out(gunicorn, report_dir):
    """The documented gap: gthread's heartbeat runs on the main thread, so gunicorn never times
    out a request running on a pool thread; it completes with a normal report."""
    env = profiling_env(report_dir, FORMATS="session")
    args = ["-k", "gthread", "--threads", "2", "-w", "1", "--timeout", "2"]
    server = gunicorn("-c", CONFIG_FILE, *args, INTERLEAVED_APP, env=env)
    assert get(server.url + "/stuck?s=4", timeout=20) == (200, b"/stuck done\n")
    assert server.stop() == 0
    [record] = metadata_records(report_dir)
    assert (record["path"], record["status"], record["outcome"]) == ("/stuck", 200, "complete")
    assert "_TIMEOUT" not in record["name"]
    assert record["duration"] >= 4
    assert "stuck_work" in report_functions(report_dir, record)
    assert len(server.worker_pids()) == 1
