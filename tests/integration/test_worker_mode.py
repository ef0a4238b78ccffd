"""Per-worker mode on real gunicorn: each worker profiles everything it runs and writes one report
per window, on the heartbeat every FLUSH_INTERVAL seconds and at exit; windows merge back into one
profile; recycled workers lose nothing."""

from __future__ import annotations

import re
import threading
import time

import pytest
from pyinstrument.renderers import ConsoleRenderer
from support import (
    CONFIG_FILE,
    function_names,
    get,
    load_session,
    metadata_records,
    profiling_env,
)

from gunicorn_pyinstrument.aggregate import merge_sessions, worker_root

INTERLEAVED_APP = "tests.apps.interleaved_app:app"
FASTAPI_APP = "tests.apps.fastapi_app:app"

# --timeout 2: an idle sync worker beats (and so turns its windows over) every timeout/2 = 1 s.
WORKERS = {
    "sync": (["-k", "sync"], INTERLEAVED_APP, "SyncWorker"),
    "gthread": (["-k", "gthread", "--threads", "4"], INTERLEAVED_APP, "ThreadWorker"),
    "gevent": (["-k", "gevent"], INTERLEAVED_APP, "GeventWorker"),
    "asgi": (["-k", "asgi"], FASTAPI_APP, "ASGIWorker"),
}
WINDOW_ENV = {"MODE": "worker", "FLUSH_INTERVAL": "1", "FORMATS": "session"}
NAME = re.compile(r"^\d{8}T\d{6}\.\d{6}Z_WORKER_window_(\d+)ms_(\d+)-[0-9a-f]{6}-(\d+)$")
SLACK = 0.05  # seconds: wall clock versus the monotonic durations the windows are measured with


def windows(directory) -> list[dict]:
    return sorted(metadata_records(directory), key=lambda r: r["start"])


def session_of(directory, record):
    return load_session(directory / record["files"]["session"])


def start(gunicorn, report_dir, worker: str, *extra: str, workers: int = 1, **settings: str):
    args, app, _ = WORKERS[worker]
    env = profiling_env(report_dir, **{**WINDOW_ENV, **settings})
    return gunicorn(
        "-c", CONFIG_FILE, *args, "-w", str(workers), "--timeout", "2", *extra, app, env=env, workers=workers
    )


def stop_during_request(server, target: str = "/alpha?s=0.8", after: float = 0.3) -> tuple[float, float]:
    """Send a long request, stop the server while it runs; (when the stop was sent, when the
    response came back). The response must still be complete (graceful stop)."""
    result: list = []

    def last_request() -> None:
        result.append(get(server.url + target))
        result.append(time.time())

    thread = threading.Thread(target=last_request)
    thread.start()
    time.sleep(after)
    stop_sent = time.time()
    assert server.stop() == 0
    thread.join(30)
    assert result and result[0][0] == 200, result
    return stop_sent, result[1]


@pytest.mark.parametrize("worker", list(WORKERS))
def test_windows_on_time_and_at_exit(gunicorn, report_dir, worker):
    _, _, worker_class = WORKERS[worker]
    server = start(gunicorn, report_dir, worker)
    began = time.time()
    for _ in range(6):
        assert get(server.url + "/alpha?s=0.1")[0] == 200
        time.sleep(0.4)
    stop_sent, answered = stop_during_request(server)

    records = windows(report_dir)
    assert len(records) >= 3, records
    (pid,) = server.worker_pids()
    root = worker_root(pid)
    seen: set[str] = set()
    for i, record in enumerate(records):
        assert record["kind"] == "worker"
        assert record["trigger"] == "worker"
        assert record["method"] is None and record["path"] is None and record["status"] is None
        assert record["outcome"] == "complete"
        assert record["pid"] == pid
        assert record["worker"]["class"] == worker_class
        assert record["samples"] > 0
        assert set(record["files"]) == {"session"}
        match = NAME.match(record["name"])
        assert match, record["name"]
        assert int(match.group(2)) == pid
        assert int(match.group(1)) == round(record["duration"] * 1000)
        assert began - 1 <= record["start"] < record["end"] <= answered + 5
        if i + 1 < len(records):
            # A window closed by the heartbeat: about the flush interval (the heartbeat comes
            # every second at most when idle; a busy sync worker beats between requests).
            assert 1.0 - SLACK <= record["duration"] <= 4.0, record
            # Consecutive windows do not overlap, and leave no gap worth speaking of.
            following = records[i + 1]
            assert following["start"] >= record["end"] - SLACK, (record, following)
            assert following["start"] - record["end"] < 0.5, (record, following)
        else:
            assert 0 < record["duration"] <= 4.0, record

        session = session_of(report_dir, record)
        assert session.sample_count == record["samples"]
        # One root per window, whatever thread or greenlet ran the code.
        assert {stack[0] for stack, _ in session.frame_records} == {root}
        seen |= function_names(session)

    # The sequence numbers in the names count the worker's windows.
    assert [int(NAME.match(r["name"]).group(3)) for r in records] == list(range(1, len(records) + 1))
    # The last window was written when the worker exited: it covers the stop and the end of the
    # request that was running then.
    assert records[-1]["end"] >= stop_sent - SLACK
    assert records[-1]["end"] >= answered - 0.1
    assert "alpha_work" in function_names(session_of(report_dir, records[-1]))
    assert "alpha_work" in seen


def test_uvicorn_windows_turn_over_between_requests(gunicorn, report_dir):
    """UvicornWorker beats only every --timeout/2 s (15 s here): the windows still turn over on
    time while requests come, because each request's end turns them over too."""
    pytest.importorskip("uvicorn_worker")
    env = profiling_env(report_dir, **WINDOW_ENV)
    server = gunicorn(
        "-c",
        CONFIG_FILE,
        "-k",
        "uvicorn_worker.UvicornWorker",
        "-w",
        "1",
        "--timeout",
        "30",
        FASTAPI_APP,
        env=env,
    )
    for _ in range(20):
        assert get(server.url + "/alpha?s=0.01")[0] == 200
        time.sleep(0.25)
    assert server.stop() == 0
    records = windows(report_dir)
    # About 5 s of requests with FLUSH_INTERVAL=1: several windows, none of them heartbeat-long.
    assert len(records) >= 3, records
    for record in records[:-1]:
        assert 1.0 - SLACK <= record["duration"] <= 2.0, record


def test_merged_windows_hold_the_sum_of_their_samples(gunicorn, report_dir):
    server = start(gunicorn, report_dir, "sync", workers=2)
    for _ in range(5):
        assert get(server.url + "/alpha?s=0.1")[0] == 200
        assert get(server.url + "/beta?s=0.1")[0] == 200
        time.sleep(0.2)
    assert server.stop() == 0

    records = windows(report_dir)
    assert len(records) >= 2  # one per worker at least
    sessions = [session_of(report_dir, r) for r in records]
    merged = merge_sessions(sessions)
    assert merged.sample_count == sum(r["samples"] for r in records)
    assert merged.sample_count == sum(s.sample_count for s in sessions)
    assert len(merged.frame_records) == sum(len(s.frame_records) for s in sessions)
    assert merged.duration == pytest.approx(sum(r["duration"] for r in records), abs=0.01)
    assert {"alpha_work", "beta_work"} <= function_names(merged)
    text = ConsoleRenderer(unicode=False, color=False, show_all=True).render(merged)
    for pid in {r["pid"] for r in records}:
        assert f"Worker {pid}" in text
    assert "alpha_work" in text and "beta_work" in text


def test_recycled_workers_keep_every_window(gunicorn, report_dir):
    # A window far longer than the test: every window is written at worker_exit.
    server = start(gunicorn, report_dir, "sync", "--max-requests", "5", FLUSH_INTERVAL="60")
    for _ in range(12):
        assert get(server.url + "/alpha?s=0.02")[0] == 200
    assert server.stop() == 0

    booted = server.worker_pids()
    assert len(booted) >= 2, server.log  # 12 requests, at most 5 per worker
    records = windows(report_dir)
    assert len(records) == len(booted), (records, server.log)
    assert [r["pid"] for r in records] == booted  # in boot order, one each
    assert len({r["worker"]["instance"] for r in records}) == len(records)
    assert all(r["samples"] > 0 for r in records)
    for record in records:
        assert record["name"].endswith(f"_{record['pid']}-{record['worker']['instance']}-1")
        assert "alpha_work" in function_names(session_of(report_dir, record))
