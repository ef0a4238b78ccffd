"""What the reports hold, on the sync and gthread workers: every format, the metadata, isolation
between concurrent requests, failures, streaming and disconnected clients."""

from __future__ import annotations

import http.client
import itertools
import json
import marshal
import os
import pstats
import socket
import stat
import struct
import time

import pytest
from support import (
    CONFIG_FILE,
    FLASK_APP,
    WSGI_APP,
    get,
    get_many,
    load_session,
    metadata_records,
    profiling_env,
    raw_exchange,
    report_files,
    report_functions,
    request,
    spool_files,
    wait_for_metadata,
)

ALL_FORMATS = "session,html,speedscope,text,pstats"
SUFFIXES = {
    "session": ".pyisession",
    "html": ".html",
    "speedscope": ".speedscope.json",
    "text": ".txt",
    "pstats": ".pstats",
}
METADATA_KEYS = {
    "version",
    "name",
    "time",
    "start",
    "method",
    "path",
    "status",
    "duration",
    "trigger",
    "label",
    "hostname",
    "pid",
    "worker",
    "samples",
    "interval",
    "files",
}

WORKERS = {
    "sync": (["-k", "sync", "-w", "1"], "SyncWorker"),
    "gthread": (["-k", "gthread", "--threads", "4", "-w", "1"], "ThreadWorker"),
}


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("worker", list(WORKERS))
def test_every_format_and_the_metadata(gunicorn, report_dir, worker):
    args, worker_class = WORKERS[worker]
    env = profiling_env(report_dir, FORMATS=ALL_FORMATS, LABEL="release 42 (candidate)")
    server = gunicorn("-c", CONFIG_FILE, *args, FLASK_APP, env=env)
    before = time.time()
    requests = [
        ("/alpha?s=0.05&secret=query-value", "/alpha", "alpha_work", b"alpha"),
        ("/beta?s=0.05", "/beta", "beta_work", b"beta"),
        ("/users/7", "/users/7", None, b"user 7"),
        ("/alpha?s=0.05", "/alpha", "alpha_work", b"alpha"),
    ]
    for target, _, _, body in requests:  # one after another: names must sort in this order
        assert get(server.url + target) == (200, body)
    after = time.time()
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert [r["path"] for r in records] == [path for _, path, _, _ in requests]
    names = [r["name"] for r in records]
    assert len(set(names)) == len(names)
    starts = [r["start"] for r in records]
    assert starts == sorted(starts)  # sorting by name is sorting by time
    assert mode_of(report_dir) == 0o700
    assert spool_files(report_dir) == []
    worker_pids = server.worker_pids()

    for record, (_, path, function, _) in zip(records, requests, strict=True):
        assert set(record) >= METADATA_KEYS, METADATA_KEYS - set(record)
        assert record["version"] == 1
        assert record["method"] == "GET"
        assert record["path"] == path
        assert record["status"] == 200
        assert record["trigger"] == "sample"
        assert record["label"] == "release 42 (candidate)"
        assert record["hostname"] == socket.gethostname()
        assert record["pid"] in worker_pids
        assert record["worker"]["class"] == worker_class
        assert record["worker"]["age"] == 1
        assert len(record["worker"]["instance"]) == 6
        assert before - 1 <= record["start"] <= after
        assert record["time"].startswith(time.strftime("%Y-%m-%dT", time.gmtime(record["start"])))
        assert 0 < record["duration"] < after - before + 1
        assert record["interval"] == 0.001
        assert "query-value" not in json.dumps(record)
        assert set(record["files"]) == set(SUFFIXES)
        for fmt, filename in record["files"].items():
            assert filename == record["name"] + SUFFIXES[fmt]
            assert mode_of(report_dir / filename) == 0o600
        assert mode_of(report_dir / (record["name"] + ".meta.json")) == 0o600

        files = {fmt: report_dir / name for fmt, name in record["files"].items()}
        session = load_session(files["session"])
        assert session.sample_count == record["samples"]
        with open(files["speedscope"]) as f:
            speedscope = json.load(f)
        assert speedscope["$schema"] == "https://www.speedscope.app/file-format-schema.json"
        assert isinstance(speedscope["shared"]["frames"], list)
        assert isinstance(speedscope["profiles"], list)
        with open(files["pstats"], "rb") as f:
            raw_stats = marshal.load(f)  # pstats.Stats refuses an empty profile (a 0-sample request)
        assert isinstance(raw_stats, dict)
        stat_functions = {func for (_, _, func) in raw_stats}
        html = files["html"].read_text()
        assert "<html" in html.lower()
        text = files["text"].read_text()
        if function is not None:
            assert record["duration"] >= 0.05
            assert record["samples"] >= 2
            assert function in report_functions(report_dir, record)
            assert function in stat_functions
            pstats.Stats(str(files["pstats"])).sort_stats("cumulative")
            assert any(frame["name"] == function for frame in speedscope["shared"]["frames"])
            assert function in text

    # Nothing but the five formats and the metadata, for each report.
    assert len(report_files(report_dir)) == len(records) * (len(SUFFIXES) + 1)


def test_concurrent_requests_on_gthread_are_isolated(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session")
    server = gunicorn("-c", CONFIG_FILE, "-k", "gthread", "--threads", "4", "-w", "1", FLASK_APP, env=env)
    urls = [server.url + p for p in ["/alpha?s=0.3", "/beta?s=0.3"] * 3]
    results = get_many(urls, concurrency=6)
    assert sorted(results) == [(200, b"alpha")] * 3 + [(200, b"beta")] * 3
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert sorted(r["path"] for r in records) == ["/alpha"] * 3 + ["/beta"] * 3
    # The requests overlapped (else this test proves nothing).
    spans = sorted((r["start"], r["start"] + r["duration"]) for r in records)
    assert any(b_start < a_end for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    for record in records:
        names = report_functions(report_dir, record)
        own, other = (
            ("alpha_work", "beta_work") if record["path"] == "/alpha" else ("beta_work", "alpha_work")
        )
        assert own in names, record["name"]
        assert other not in names, record["name"]


def test_flask_error_gives_a_500_report(gunicorn, report_dir):
    server = gunicorn(
        "-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=profiling_env(report_dir, FORMATS="session")
    )
    assert get(server.url + "/error")[0] == 500
    assert server.stop() == 0
    [record] = metadata_records(report_dir)
    assert (record["path"], record["status"]) == ("/error", 500)
    assert "error" in report_functions(report_dir, record)


@pytest.mark.parametrize("worker", list(WORKERS))
def test_wsgi_app_raising_before_and_during_the_response(gunicorn, report_dir, worker):
    args, _ = WORKERS[worker]
    server = gunicorn("-c", CONFIG_FILE, *args, WSGI_APP, env=profiling_env(report_dir, FORMATS="session"))

    assert get(server.url + "/raise-before-start")[0] == 500
    # The body raises after two parts went out: gunicorn closes the connection, no 500 possible.
    reply = raw_exchange(server.port, b"GET /raise-in-body?n=3 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")
    assert b"part 2" in reply
    # The same (single) worker profiles the next request normally.
    assert get(server.url + "/work?s=0.05") == (200, b"ok\n")
    # Wait for the reports before stopping: after a mid-body error, a stopping gthread worker does not
    # wait for the request still in its post_request (see test_request_in_flight_at_shutdown_is_reported).
    wait_for_metadata(report_dir, 3)
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert [r["path"] for r in records] == ["/raise-before-start", "/raise-in-body", "/work"]
    before, during, after = records
    assert before["status"] == 500
    assert "fail_before_start" in report_functions(report_dir, before)
    assert during["status"] == 200  # the status line was sent before the body failed
    assert "body_then_failure" in report_functions(report_dir, during)
    after_names = report_functions(report_dir, after)
    assert after["status"] == 200
    assert "wsgi_work" in after_names
    assert not after_names & {"fail_before_start", "body_then_failure"}
    assert 0.05 <= after["duration"] < 2


@pytest.mark.parametrize("worker", list(WORKERS))
def test_streaming_and_client_disconnect(gunicorn, report_dir, worker):
    args, _ = WORKERS[worker]
    server = gunicorn("-c", CONFIG_FILE, *args, FLASK_APP, env=profiling_env(report_dir, FORMATS="session"))

    # A streamed body: the report covers the whole iteration, not just the view call.
    status, body = get(server.url + "/stream?n=20")
    assert status == 200
    assert body.count(b"chunk") == 20

    # A client that goes away after the first chunks of a 100-chunk stream.
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /stream?n=100 HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"chunk 1\n" not in received:
            data = sock.recv(4096)
            assert data, "connection closed early"
            received += data
        # Reset rather than close politely: the worker sees the failure on its next write.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # Then the worker goes on profiling, with no frame of the abandoned stream.
    assert get(server.url + "/alpha?s=0.05") == (200, b"alpha")
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert [r["path"] for r in records] == ["/stream", "/stream", "/alpha"]
    streamed, abandoned, alpha = records
    assert streamed["status"] == 200
    assert streamed["duration"] >= 0.19
    assert "stream_chunks" in report_functions(report_dir, streamed)
    assert "stream_chunks" in report_functions(report_dir, abandoned)
    # Cut short by the failed write (all 100 chunks take 1 s or more).
    assert abandoned["duration"] < 0.9
    alpha_names = report_functions(report_dir, alpha)
    assert "alpha_work" in alpha_names
    assert "stream_chunks" not in alpha_names
    assert alpha["duration"] < 2
    assert alpha["status"] == 200


def test_keep_alive_requests_on_gthread(gunicorn, report_dir):
    """Requests that share one connection may run on different pool threads: each gets its own report."""
    env = profiling_env(report_dir, FORMATS="session")
    server = gunicorn("-c", CONFIG_FILE, "-k", "gthread", "--threads", "2", "-w", "1", FLASK_APP, env=env)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for target, body in [
            ("/alpha?s=0.03", b"alpha"),
            ("/beta?s=0.03", b"beta"),
            ("/alpha?s=0.03", b"alpha"),
        ]:
            conn.request("GET", target)
            resp = conn.getresponse()
            assert (resp.status, resp.read()) == (200, body)
            assert not resp.will_close
    finally:
        conn.close()
    assert server.stop() == 0
    records = metadata_records(report_dir)
    assert [r["path"] for r in records] == ["/alpha", "/beta", "/alpha"]
    for record in records:
        names = report_functions(report_dir, record)
        own, other = (
            ("alpha_work", "beta_work") if record["path"] == "/alpha" else ("beta_work", "alpha_work")
        )
        assert own in names
        assert other not in names


def test_methods_and_statuses(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session")
    server = gunicorn("-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=env)
    assert request("POST", server.url + "/alpha", body=b"x" * 1000)[0] == 405
    assert request("HEAD", server.url + "/") == (200, b"")
    assert request("GET", server.url + "/users/not-a-number")[0] == 200  # the catch-all route
    assert request("DELETE", server.url + "/users/3")[0] == 405
    assert server.stop() == 0
    records = metadata_records(report_dir)
    assert [(r["method"], r["path"], r["status"]) for r in records] == [
        ("POST", "/alpha", 405),
        ("HEAD", "/", 200),
        ("GET", "/users/not-a-number", 200),
        ("DELETE", "/users/3", 405),
    ]
    assert [r["name"].split("_")[1] for r in records] == ["POST", "HEAD", "GET", "DELETE"]
