"""UvicornWorker, from uvicorn-worker and from uvicorn itself (deprecated there), with a FastAPI app:
uvicorn never calls gunicorn's request hooks, so the plugin wraps the ASGI app and profiles each
HTTP request, an asyncio task, in strict mode; lifespan and WebSocket pass through."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import socket

import pytest
from support import (
    CONFIG_FILE,
    ENV_PREFIX,
    by_path,
    get,
    get_many,
    load_session,
    metadata_records,
    profiling_env,
    report_functions,
)

FASTAPI_APP = "tests.apps.fastapi_app:app"
WORKER_CLASS = "UvicornWorker"
TOKEN = "uvicorn-token-0123456789"
UVICORN_WORKERS = ["uvicorn_worker.UvicornWorker", "uvicorn.workers.UvicornWorker"]
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def sampled_seconds(session) -> float:
    return sum(t for _, t in session.frame_records)


def seconds_in(session, function: str) -> float:
    """Sampled time with ``function`` anywhere on the stack."""
    return sum(
        t for stack, t in session.frame_records if any(f.split("\x00", 1)[0] == function for f in stack)
    )


def websocket_echo(port: int, text: str, path: str = "/ws") -> str:
    """A WebSocket handshake and one masked text frame, on a plain socket; the text frame received."""
    key = base64.b64encode(os.urandom(16)).decode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            assert chunk, f"closed during the handshake: {data!r}"
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        accept = base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode()).digest())
        assert accept.lower() in head.lower(), head

        payload = text.encode()
        assert len(payload) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)

        while len(data) < 2:
            chunk = sock.recv(4096)
            assert chunk, "closed before the echo"
            data += chunk
        assert data[0] == 0x81, data  # FIN + text
        assert data[1] < 126 and not data[1] & 0x80, data  # short, unmasked (server to client)
        length = data[1]
        while len(data) < 2 + length:
            chunk = sock.recv(4096)
            assert chunk, "closed in the middle of the echo"
            data += chunk
        return data[2 : 2 + length].decode()


def assert_isolated(report_dir, records, worker_class):
    assert sorted(r["path"] for r in records) == ["/alpha"] * 3 + ["/beta"] * 3
    # The requests overlapped in the one worker (else isolation is not being tested).
    spans = sorted((r["start"], r["start"] + r["duration"]) for r in records)
    assert any(b_start < a_end for (_, a_end), (b_start, _) in itertools.pairwise(spans)), spans
    for record in records:
        assert (record["method"], record["status"]) == ("GET", 200)
        assert record["worker"]["class"] == worker_class
        session = load_session(report_dir / record["files"]["session"])
        own, other = (
            ("alpha_work", "beta_work") if record["path"] == "/alpha" else ("beta_work", "alpha_work")
        )
        # All of its own CPU time (0.2 s), none of the other's; and the whole request is accounted
        # for, its time switched out included.
        assert seconds_in(session, own) >= 0.15, record["name"]
        assert seconds_in(session, other) == 0, record["name"]
        assert sampled_seconds(session) >= 0.8 * record["duration"], record["name"]


@pytest.fixture(params=UVICORN_WORKERS)
def worker(request) -> list[str]:
    return ["-k", request.param, "-w", "1"]


def test_concurrent_requests_errors_and_streams(gunicorn, report_dir, worker):
    server = gunicorn(
        "-c", CONFIG_FILE, *worker, FASTAPI_APP, env=profiling_env(report_dir, FORMATS="session")
    )
    replies = get_many([server.url + p for p in ["/alpha?s=0.2", "/beta?s=0.2"] * 3], concurrency=6)
    assert sorted(replies) == [(200, b"alpha")] * 3 + [(200, b"beta")] * 3
    assert get(server.url + "/error")[0] == 500
    status, body = get(server.url + "/stream?n=20")
    assert (status, body.count(b"chunk")) == (200, 20)
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert len(records) == 8
    assert len({r["pid"] for r in records}) == 1
    assert_isolated(report_dir, by_path(records, "/alpha") + by_path(records, "/beta"), WORKER_CLASS)
    [error] = by_path(records, "/error")
    assert (error["method"], error["status"], error["worker"]["class"]) == ("GET", 500, WORKER_CLASS)
    # The streamed body is profiled to its last chunk, not just until the endpoint returns.
    [stream] = by_path(records, "/stream")
    assert (stream["status"], stream["worker"]["class"]) == (200, WORKER_CLASS)
    assert stream["duration"] >= 0.19  # 20 chunks burning 10 ms each
    assert "stream_chunks" in report_functions(report_dir, stream)


def test_token_trigger(gunicorn, report_dir, worker):
    env = profiling_env(report_dir, FORMATS="session", TOKEN=TOKEN, SAMPLE_RATE="0")
    server = gunicorn("-c", CONFIG_FILE, *worker, FASTAPI_APP, env=env)
    assert get(server.url + "/alpha?s=0.02") == (200, b"alpha")
    assert get(server.url + "/beta?s=0.02", {"X-Pyinstrument-Token": TOKEN[:-1] + "X"}) == (200, b"beta")
    assert get(server.url + "/alpha?s=0.02", {"X-Pyinstrument-Token": TOKEN}) == (200, b"alpha")
    assert server.stop() == 0
    [record] = metadata_records(report_dir)
    assert (record["path"], record["trigger"], record["status"]) == ("/alpha", "token", 200)
    assert record["worker"]["class"] == WORKER_CLASS
    assert "alpha_work" in report_functions(report_dir, record)


def test_lifespan_websocket_and_sync_routes(gunicorn, report_dir, worker):
    server = gunicorn(
        "-c", CONFIG_FILE, *worker, FASTAPI_APP, env=profiling_env(report_dir, FORMATS="session")
    )
    assert get(server.url + "/lifespan") == (200, b"started")
    assert websocket_echo(server.port, "hello") == "echo hello"
    assert get(server.url + "/sync?s=0.2") == (200, b"sync")
    assert server.stop() == 0

    records = metadata_records(report_dir)
    # No report for the WebSocket: only HTTP requests are profiled.
    assert [r["path"] for r in records] == ["/lifespan", "/sync"]
    [sync] = by_path(records, "/sync")
    assert (sync["status"], sync["worker"]["class"]) == (200, WORKER_CLASS)
    # The documented limitation: a sync `def` route runs in the thread pool, outside the profiled
    # task; its time is in the report, as the task awaiting the pool, but its function is not.
    assert sync["duration"] >= 0.2
    session = load_session(report_dir / sync["files"]["session"])
    assert seconds_in(session, "run_sync_in_worker_thread") >= 0.18
    assert "sync_work" not in report_functions(report_dir, sync)


def test_plugin_off_changes_nothing(gunicorn, tmp_path, worker):
    reports = tmp_path / "not-created"
    server = gunicorn("-c", CONFIG_FILE, *worker, FASTAPI_APP, env={f"{ENV_PREFIX}_DIR": str(reports)})
    assert get(server.url + "/alpha?s=0.02") == (200, b"alpha")
    assert get(server.url + "/lifespan") == (200, b"started")
    assert websocket_echo(server.port, "off") == "echo off"
    assert server.stop() == 0
    assert not reports.exists()
    assert "gunicorn-pyinstrument" not in server.log
