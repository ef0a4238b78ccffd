"""Workers come and go (max-requests, HUP reload) and servers stop (TERM, INT, QUIT) without losing
a report of a request that was answered."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import (
    CONFIG_FILE,
    FLASK_APP,
    get,
    get_many,
    metadata_records,
    needs_clean_gthread_recycling,
    profiling_env,
    report_functions,
    skip_unless_gthread_recycles_cleanly,
    spool_files,
)

FASTAPI_APP = "tests.apps.fastapi_app:app"

WORKERS = {
    "sync": ["-k", "sync"],
    "gthread": ["-k", "gthread", "--threads", "2"],
}


def jobs_left(directory) -> list[str]:
    return [p.name for p in spool_files(directory) if p.name.endswith(".job.json")]


@pytest.mark.parametrize("worker", list(WORKERS))
def test_max_requests_recycles_without_losing_reports(gunicorn, report_dir, worker):
    if worker == "gthread":
        skip_unless_gthread_recycles_cleanly()
    env = profiling_env(report_dir, FORMATS="session")
    server = gunicorn(
        "-c", CONFIG_FILE, *WORKERS[worker], "-w", "1", "--max-requests", "5", FLASK_APP, env=env
    )
    for i in range(17):
        assert get(server.url + f"/alpha?s=0.01&i={i}") == (200, b"alpha")
    assert server.stop() == 0

    booted = server.worker_pids()
    assert len(booted) > 1, server.log
    records = metadata_records(report_dir)
    assert len(records) == 17
    assert len({r["name"] for r in records}) == 17
    assert {r["pid"] for r in records} <= set(booted)
    assert len({r["pid"] for r in records}) > 1
    assert all(r["status"] == 200 and r["path"] == "/alpha" for r in records)
    if worker == "sync":  # one request at a time: each worker serves exactly its quota
        assert [sum(r["pid"] == pid for r in records) for pid in booted] == [5, 5, 5, 2]


@needs_clean_gthread_recycling
def test_hup_reload_keeps_every_report(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session,text")
    server = gunicorn("-c", CONFIG_FILE, "-k", "gthread", "--threads", "2", "-w", "2", FLASK_APP, env=env)
    old = set(server.booted_workers())
    assert len(old) == 2
    before = get_many([server.url + f"/alpha?s=0.01&i={i}" for i in range(6)], concurrency=3)
    assert before == [(200, b"alpha")] * 6

    # A request most likely still running when the reload starts: its old worker finishes it,
    # then exits (its report is flushed on the way out).
    in_flight: list[tuple[int, bytes]] = []
    slow = threading.Thread(target=lambda: in_flight.append(get(server.url + "/beta?s=0.5")))
    slow.start()
    time.sleep(0.2)
    os.kill(server.pid, signal.SIGHUP)
    deadline = time.monotonic() + 20
    while len(set(server.booted_workers()) - old) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    new = set(server.booted_workers()) - old
    assert len(new) == 2, server.log
    slow.join(30)
    assert in_flight == [(200, b"beta")]

    after = get_many([server.url + f"/alpha?s=0.01&j={i}" for i in range(6)], concurrency=3)
    assert after == [(200, b"alpha")] * 6
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert len(records) == 13
    [beta] = [r for r in records if r["path"] == "/beta"]
    assert beta["status"] == 200
    assert "beta_work" in report_functions(report_dir, beta)
    alphas = sorted((r for r in records if r["path"] == "/alpha"), key=lambda r: r["start"])
    assert {r["pid"] for r in alphas[:6]} <= old
    assert {r["pid"] for r in alphas[6:]} <= new
    assert all(set(r["files"]) == {"session", "text"} for r in records)
    assert jobs_left(report_dir) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT], ids=["TERM", "INT", "QUIT"])
def test_stop_right_after_a_burst_loses_nothing(gunicorn, report_dir, sig):
    env = profiling_env(report_dir, FORMATS="session,text")
    server = gunicorn("-c", CONFIG_FILE, "-k", "gthread", "--threads", "4", "-w", "2", FLASK_APP, env=env)
    replies = get_many([server.url + f"/alpha?s=0.01&i={i}" for i in range(20)], concurrency=8)
    answered = sum(reply == (200, b"alpha") for reply in replies)
    assert answered == 20
    server.stop(sig)  # at once: writer queues and the renderer still have work
    assert not server.running()

    records = metadata_records(report_dir)
    assert len(records) == answered
    assert all(set(r["files"]) == {"session", "text"} for r in records)
    assert jobs_left(report_dir) == []


def answered_or_error(url: str) -> tuple[int, bytes] | str:
    try:
        return get(url, timeout=30)
    except (OSError, http.client.HTTPException) as exc:
        return repr(exc)


def open_sockets(pid: int) -> int:
    """How many sockets a process holds (read from /proc)."""
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


def test_uvicorn_sigterm_flushes_every_report(gunicorn, report_dir):
    """UvicornWorker dies from SIGTERM without worker_exit: the plugin flushes its writer on the
    signal. SIGTERM comes while the requests are still running, so that uvicorn's graceful
    shutdown finishes them and the process ends with their reports still queued."""
    env = profiling_env(report_dir, FORMATS="session,text")
    server = gunicorn(
        "-c", CONFIG_FILE, "-k", "uvicorn_worker.UvicornWorker", "-w", "1", FASTAPI_APP, env=env
    )
    assert get(server.url + "/lifespan") == (200, b"started")  # serving already, not just booted
    [worker] = server.worker_pids()
    time.sleep(0.1)  # the warm-up connection is closed
    idle = open_sockets(worker)
    with ThreadPoolExecutor(max_workers=20) as pool:
        # Each takes 50 ms of CPU, interleaved with the others: about a second for all of them.
        replies = pool.map(answered_or_error, [server.url + f"/alpha?s=0.05&i={i}" for i in range(20)])
        deadline = time.monotonic() + 10
        while open_sockets(worker) < idle + 20 and time.monotonic() < deadline:
            time.sleep(0.01)  # until the worker has accepted all the connections
        time.sleep(0.1)  # and started their requests
        assert server.stop(signal.SIGTERM) == 0
        replies = list(replies)
    # uvicorn's graceful shutdown finishes the requests in flight (and resets a connection whose
    # request it had not started yet: not answered, so no report expected).
    answered = sum(reply == (200, b"alpha") for reply in replies)
    assert answered >= 10, replies

    records = metadata_records(report_dir)
    assert sorted(r["path"] for r in records) == ["/alpha"] * answered + ["/lifespan"]
    assert all(r["worker"]["class"] == "UvicornWorker" for r in records)
    assert all(set(r["files"]) == {"session", "text"} for r in records)
    assert jobs_left(report_dir) == []
