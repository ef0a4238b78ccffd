"""The app fails, or its client goes away, again and again on one worker: the profiler of the failed
request is always stopped, its report is written with the status that was answered, and the very
next request on that worker is answered and profiled normally, with nothing of the failed one in
its report. The worker never dies.

tests/integration/test_reports.py shows each failure once; here every kind comes back, in turns,
on a single worker (and a single thread under gthread), and every response is checked whole.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest
from support import (
    CONFIG_FILE,
    Gunicorn,
    get,
    load_session,
    profiling_env,
    raw_exchange,
    wait_for_paths,
)
from support import function_names as functions_of

APP = "tests.apps.reliability_app:app"

WORKERS = {
    "sync": ["-k", "sync"],
    # One thread: the next request runs where the failed one did.
    "gthread": ["-k", "gthread", "--threads", "1"],
}

#: The app's functions that only failing requests run.
FAILING = {"raise_before_response", "generator_then_raise", "streamed_body", "work_request"}


def raised(server: Gunicorn, ident: int) -> int:
    """The app raises before responding: gunicorn answers 500."""
    status, body = get(f"{server.url}/raise/{ident}")
    assert status == 500, body
    return 500


def raised_midway(server: Gunicorn, ident: int) -> int:
    """The body's generator raises after three parts: the status line was already sent."""
    reply = raw_exchange(server.port, f"GET /raise-midway/{ident}?n=3 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n"), reply[:200]
    assert b"part 2\n" in reply
    assert not reply.endswith(b"0\r\n\r\n"), "a body cut short must not look complete"
    return 200


def close_raises(server: Gunicorn, ident: int) -> int:
    """The iterable's close() raises after the whole body went out."""
    assert get(f"{server.url}/close-raises/{ident}") == (200, f"close {ident}\n".encode())
    return 200


def disconnected_midway(server: Gunicorn, ident: int) -> int:
    """The client resets the connection after two chunks of a 200-chunk stream."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"GET /stream/{ident}?n=200&s=0.005 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        while b"chunk 1\n" not in received:
            data = sock.recv(4096)
            assert data, "closed before the second chunk"
            received += data
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return 200


def gone_before_response(server: Gunicorn, ident: int) -> int:
    """The client sends its request and closes at once: the app runs, its answer has nowhere to go."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(f"GET /work/{ident}?s=0.05 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    time.sleep(0.1)  # until the app has answered into the closed connection
    return 200


FAILURES = {
    "raise": raised,
    "raise-midway": raised_midway,
    "close-raises": close_raises,
    "stream": disconnected_midway,
    "work": gone_before_response,
}
ROUNDS = 2


@pytest.mark.parametrize("worker", list(WORKERS))
def test_failures_in_turn_leave_the_worker_profiling_cleanly(gunicorn, report_dir, worker):
    env = profiling_env(report_dir, FORMATS="session")
    server = gunicorn("-c", CONFIG_FILE, *WORKERS[worker], "-w", "1", APP, env=env)
    [pid] = server.booted_workers()
    failed: dict[str, int] = {}  # path -> status answered
    following: list[str] = []
    ident = 0
    for _ in range(ROUNDS):
        for kind, fail in FAILURES.items():
            ident += 1
            failed[f"/{kind}/{ident}"] = fail(server, ident)
            # The next request, on the same worker (and thread): answered exactly.
            ident += 1
            assert get(f"{server.url}/deep/{ident}?depth=3&s=0.03") == (200, f"deep {ident}\n".encode())
            following.append(f"/deep/{ident}")

    records = wait_for_paths(report_dir, [*failed, *following])
    assert server.booted_workers() == [pid]
    assert server.worker_pids() == [pid], server.log
    assert "Worker exiting" not in server.log
    assert server.stop() == 0

    missing = sorted(set(failed) - records.keys())
    assert not missing, missing
    for path, status in failed.items():
        [record] = records[path]
        assert (record["status"], record["outcome"]) == (status, "complete"), path
        assert record["pid"] == pid
        load_session(report_dir / record["files"]["session"])
    for path in following:
        [record] = records[path]
        assert record["status"] == 200
        names = functions_of(load_session(report_dir / record["files"]["session"]))
        assert "deep_call" in names, path
        assert not names & FAILING, (path, names & FAILING)
        # Its profiler started with it: no time carried over from the failed request.
        assert 0.03 <= record["duration"] < 0.5, (path, record["duration"])
    # The failed requests' reports hold their own work.
    for path, function in [
        ("/raise/1", "raise_before_response"),
        ("/raise-midway/3", "generator_then_raise"),
        ("/stream/7", "streamed_body"),
        ("/work/9", "work_request"),
    ]:
        [record] = records[path]
        assert function in functions_of(load_session(report_dir / record["files"]["session"])), path
    # The stream was cut short by the reset, long before its 200 chunks (at least a second).
    assert records["/stream/7"][0]["duration"] < 0.9
