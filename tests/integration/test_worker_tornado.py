"""The tornado worker, serving a WSGI app: tornado never calls gunicorn's request hooks, so the
plugin wraps the WSGI app. tornado's WSGIContainer runs it on the IOLoop thread, so requests
may be serialized; each report must hold its own request only anyway."""

from __future__ import annotations

import pytest
from support import (
    CONFIG_FILE,
    by_path,
    get,
    get_many,
    load_session,
    metadata_records,
    profiling_env,
    report_functions,
)

APP = "tests.apps.streaming_app:app"  # tests.apps.interleaved_app plus /stream
WORKER = ["-k", "tornado", "-w", "1"]
WORKER_CLASS = "TornadoWorker"
TOKEN = "tornado-token-0123456789"


def sampled_seconds(session) -> float:
    return sum(t for _, t in session.frame_records)


def seconds_in(session, function: str) -> float:
    """Sampled time with ``function`` anywhere on the stack."""
    return sum(
        t for stack, t in session.frame_records if any(f.split("\x00", 1)[0] == function for f in stack)
    )


def test_concurrent_requests_errors_and_streams(gunicorn, report_dir):
    server = gunicorn("-c", CONFIG_FILE, *WORKER, APP, env=profiling_env(report_dir, FORMATS="session"))
    replies = get_many([server.url + p for p in ["/alpha?s=0.2", "/beta?s=0.2"] * 3], concurrency=6)
    assert sorted(replies) == [(200, b"/alpha done\n")] * 3 + [(200, b"/beta done\n")] * 3
    # tornado's WSGIContainer sends no response at all when a WSGI app raises (with or without the
    # plugin): the client gives up; the report still says 500, what other servers answer.
    with pytest.raises(TimeoutError):
        get(server.url + "/error", timeout=1)
    status, body = get(server.url + "/stream?n=20")
    assert (status, body.count(b"chunk")) == (200, 20)
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert len(records) == 8
    concurrent = by_path(records, "/alpha") + by_path(records, "/beta")
    assert len(concurrent) == 6
    for record in concurrent:
        assert (record["method"], record["status"]) == ("GET", 200)
        assert record["worker"]["class"] == WORKER_CLASS
        session = load_session(report_dir / record["files"]["session"])
        own, other = (
            ("alpha_work", "beta_work") if record["path"] == "/alpha" else ("beta_work", "alpha_work")
        )
        # All of its own CPU time (0.2 s), none of the other's; and the whole request is accounted
        # for, its time switched out included.
        assert seconds_in(session, own) >= 0.15, record["name"]
        assert seconds_in(session, other) == 0, record["name"]
        assert sampled_seconds(session) >= 0.8 * record["duration"], record["name"]

    [error] = by_path(records, "/error")
    assert (error["method"], error["status"], error["worker"]["class"]) == ("GET", 500, WORKER_CLASS)
    # The body is profiled until the server closes it, not just until the app returns.
    [stream] = by_path(records, "/stream")
    assert (stream["status"], stream["worker"]["class"]) == (200, WORKER_CLASS)
    assert stream["duration"] >= 0.19  # 20 chunks burning 10 ms each
    assert "stream_chunks" in report_functions(report_dir, stream)
    assert len({r["pid"] for r in records}) == 1


def test_token_trigger(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session", TOKEN=TOKEN, SAMPLE_RATE="0")
    server = gunicorn("-c", CONFIG_FILE, *WORKER, APP, env=env)
    assert get(server.url + "/alpha?s=0.02") == (200, b"/alpha done\n")
    wrong = {"X-Pyinstrument-Token": TOKEN[:-1] + "X"}
    assert get(server.url + "/beta?s=0.02", wrong) == (200, b"/beta done\n")
    assert get(server.url + "/alpha?s=0.02", {"X-Pyinstrument-Token": TOKEN}) == (200, b"/alpha done\n")
    assert server.stop() == 0
    [record] = metadata_records(report_dir)
    assert (record["path"], record["trigger"], record["status"]) == ("/alpha", "token", 200)
    assert record["worker"]["class"] == WORKER_CLASS
    assert "alpha_work" in report_functions(report_dir, record)
