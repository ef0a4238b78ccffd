"""Checks shared by the worker-type modules (``test_worker_*.py``): each starts its own worker class,
on an app with the same routes (``/alpha``, ``/beta``, ``/error``, ``/stream``; the ASGI app also
``/lifespan``, ``/sync`` and ``/ws``), and runs these against the server."""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from support import by_path, get, get_many, load_session, metadata_records, report_functions

#: What the apps answer to /alpha and /beta: the FastAPI app, and the WSGI apps (interleaved, streaming).
ASGI_ANSWERS = (b"alpha", b"beta")
WSGI_ANSWERS = (b"/alpha done\n", b"/beta done\n")

#: Three requests each to /alpha and /beta, sent at once: 0.2 s of CPU in alpha_work / beta_work each.
CONCURRENT = ["/alpha?s=0.2", "/beta?s=0.2"] * 3

WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


# --- reading sessions ---


def sampled_seconds(session) -> float:
    return sum(t for _, t in session.frame_records)


def seconds_in(session, function: str) -> float:
    """Sampled time with ``function`` anywhere on the stack."""
    return sum(
        t for stack, t in session.frame_records if any(f.split("\x00", 1)[0] == function for f in stack)
    )


# --- WebSocket, on a plain socket ---


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


# --- checks: every worker type ---


def assert_isolated(
    report_dir: Path, records: Sequence[Mapping[str, Any]], worker_class: str, overlapping: bool = True
) -> None:
    """The reports of the :data:`CONCURRENT` requests, from one worker: each holds all of its own
    request's work and none of the other's. With ``overlapping``, the requests must have overlapped
    (else isolation is not being tested)."""
    assert sorted(r["path"] for r in records) == ["/alpha"] * 3 + ["/beta"] * 3
    if overlapping:
        spans = sorted((r["start"], r["start"] + r["duration"]) for r in records)
        assert any(b_start < a_end for (_, a_end), (b_start, _) in itertools.pairwise(spans)), spans
    assert len({r["pid"] for r in records}) == 1
    for record in records:
        assert (record["method"], record["status"]) == ("GET", 200)
        assert record["worker"]["class"] == worker_class
        session = load_session(report_dir / record["files"]["session"])
        own, other = (
            ("alpha_work", "beta_work") if record["path"] == "/alpha" else ("beta_work", "alpha_work")
        )
        # All of its own CPU time (0.2 s), none of the other's; and the whole request is accounted
        # for, its time switched out included (profilers stealing each other's samples lose it).
        assert seconds_in(session, own) >= 0.15, record["name"]
        assert seconds_in(session, other) == 0, record["name"]
        assert sampled_seconds(session) >= 0.8 * record["duration"], record["name"]


def send_concurrent(server, answers: tuple[bytes, bytes]) -> None:
    """The :data:`CONCURRENT` requests, all at once; ``answers``: the bodies of /alpha and /beta."""
    alpha, beta = answers
    replies = get_many([server.url + p for p in CONCURRENT], concurrency=6)
    assert sorted(replies) == [(200, alpha)] * 3 + [(200, beta)] * 3


def check_concurrent_requests_errors_and_streams(
    server,
    report_dir: Path,
    worker_class: str,
    answers: tuple[bytes, bytes],
    *,
    error_answered: bool = True,
    overlapping: bool = True,
) -> list[dict[str, Any]]:
    """The :data:`CONCURRENT` requests, then ``/error`` and ``/stream?n=20``; stop the server and
    check the eight reports (returned). ``answers``: the bodies of /alpha and /beta.
    ``error_answered=False``: the server sends no response to ``/error`` (the client gives up after
    1 s; the report still says 500). ``overlapping``: as in :func:`assert_isolated`."""
    send_concurrent(server, answers)
    if error_answered:
        assert get(server.url + "/error")[0] == 500
    else:
        with pytest.raises(TimeoutError):
            get(server.url + "/error", timeout=1)
    status, body = get(server.url + "/stream?n=20")
    assert (status, body.count(b"chunk")) == (200, 20)
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert len(records) == 8
    assert len({r["pid"] for r in records}) == 1
    assert_isolated(
        report_dir, by_path(records, "/alpha") + by_path(records, "/beta"), worker_class, overlapping
    )
    [error] = by_path(records, "/error")
    assert (error["method"], error["status"], error["worker"]["class"]) == ("GET", 500, worker_class)
    # The streamed body is profiled to its last chunk (until the server closes it), not just until
    # the app returns.
    [stream] = by_path(records, "/stream")
    assert (stream["status"], stream["worker"]["class"]) == (200, worker_class)
    assert stream["duration"] >= 0.19  # 20 chunks burning 10 ms each
    assert "stream_chunks" in report_functions(report_dir, stream)
    return records


def check_token_trigger(
    server, report_dir: Path, token: str, worker_class: str, answers: tuple[bytes, bytes]
) -> None:
    """With a sample rate of 0 and ``token`` set: only the request with the right token is
    profiled. Stops the server."""
    alpha, beta = answers
    assert get(server.url + "/alpha?s=0.02") == (200, alpha)
    assert get(server.url + "/beta?s=0.02", {"X-Pyinstrument-Token": token[:-1] + "X"}) == (200, beta)
    assert get(server.url + "/alpha?s=0.02", {"X-Pyinstrument-Token": token}) == (200, alpha)
    assert server.stop() == 0
    [record] = metadata_records(report_dir)
    assert (record["path"], record["trigger"], record["status"]) == ("/alpha", "token", 200)
    assert record["worker"]["class"] == worker_class
    assert "alpha_work" in report_functions(report_dir, record)


# --- checks: ASGI workers (the FastAPI app) ---


def check_lifespan_websocket_and_sync_routes(server, report_dir: Path, worker_class: str) -> None:
    """Lifespan and WebSocket pass through the plugin; a sync route's time is in its report. Stops
    the server."""
    assert get(server.url + "/lifespan") == (200, b"started")
    assert websocket_echo(server.port, "hello") == "echo hello"
    assert get(server.url + "/sync?s=0.2") == (200, b"sync")
    assert server.stop() == 0

    records = metadata_records(report_dir)
    # No report for the WebSocket: only HTTP requests are profiled.
    assert [r["path"] for r in records] == ["/lifespan", "/sync"]
    [sync] = by_path(records, "/sync")
    assert (sync["status"], sync["worker"]["class"]) == (200, worker_class)
    # A sync `def` route runs in anyio's thread pool: its work is in the report, under the call
    # that handed it over, in place of the task's wait for the pool.
    assert sync["duration"] >= 0.2
    session = load_session(report_dir / sync["files"]["session"])
    assert seconds_in(session, "sync_work") >= 0.18 * 0.85
    assert seconds_in(session, "run_in_threadpool") >= seconds_in(session, "sync_work")


def check_plugin_off_changes_nothing(server, reports: Path) -> None:
    """A server with the plugin's config but profiling off (its directory ``reports`` set only):
    HTTP, lifespan and WebSocket work; no report directory, no log line. Stops the server."""
    assert get(server.url + "/alpha?s=0.02") == (200, b"alpha")
    assert get(server.url + "/lifespan") == (200, b"started")
    assert websocket_echo(server.port, "off") == "echo off"
    assert server.stop() == 0
    assert not reports.exists()
    assert "gunicorn-pyinstrument" not in server.log
