"""What a request can make the plugin do, and what it keeps of it, on real servers.

- Hostile URL paths, sent raw: no file outside the report directory, every name short and in the
  documented character set, and the response byte for byte what the server answers with the plugin
  off. On the request hooks (``sync``) and on both app wrappers (``gevent_pywsgi``, ``asgi``).
- The token: every near miss profiles nothing and changes nothing; the right one profiles; the
  token is never logged nor stored; it is compared with ``hmac.compare_digest``.
- Nothing of the request but its method and path is stored by default, in any format; with the
  opt-in, the query string and the listed headers only, in the metadata only, never in a name.
- File and directory modes, for every file written: reports, metadata and the renderer's spool.

Related: ``tests/integration/test_paths.py`` (hostile paths on Flask, all formats),
``tests/integration/test_settings_live.py::test_token_overrides_rate_filters_and_min_duration``.
"""

from __future__ import annotations

import ast
import hmac
import inspect
import os
import re
import signal
import stat
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from apps.echo_app import echo
from support import (
    CONFIG_FILE,
    ENV_PREFIX,
    Gunicorn,
    GunicornFactory,
    metadata_records,
    profiling_env,
    raw_exchange,
    renderer_processes,
    report_files,
    spool_files,
)

from gunicorn_pyinstrument.worker import choosing
from gunicorn_pyinstrument.worker.choosing import Selector

#: Each worker class with the app it runs: gunicorn's request hooks, and the two app wrappers.
WORKERS = {
    "sync": ("-k", "sync", "tests.apps.echo_app:app"),
    "gevent_pywsgi": ("-k", "gevent_pywsgi", "tests.apps.echo_app:app"),
    "asgi": ("-k", "asgi", "tests.apps.echo_app:asgi_app"),
}
NAME = re.compile(r"[0-9][A-Za-z0-9._-]*")  # a report file name: the documented characters only
TOKEN = "Sec-" + uuid.uuid4().hex  # 36 characters, lower-case hex: case matters
TOKEN_HEADER = "X-Pyinstrument-Token"


# --- helpers ---


def raw_request(target: bytes, headers: list[tuple[str, str]] | None = None) -> bytes:
    lines = [b"GET " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers or []]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def without_date(reply: bytes) -> bytes:
    """The reply without its Date header, the only part that may differ between two servers."""
    head, sep, body = reply.partition(b"\r\n\r\n")
    lines = [line for line in head.split(b"\r\n") if not line.lower().startswith(b"date:")]
    return b"\r\n".join(lines) + sep + body


def ask(server: Gunicorn, request: bytes) -> bytes:
    reply = raw_exchange(server.port, request, timeout=10)
    assert reply.startswith(b"HTTP/1."), (request[:80], reply[:200])
    return without_date(reply)


def off_and_on(
    gunicorn: GunicornFactory, worker: str, report_dir: Path, off_dir: Path, *args: str, **settings: str
) -> tuple[Gunicorn, Gunicorn]:
    """The same server twice: with the plugin off (its directory must never appear), and on."""
    cls_args = WORKERS[worker]
    off = gunicorn("-c", CONFIG_FILE, *args, *cls_args, env={f"{ENV_PREFIX}_DIR": str(off_dir)})
    on = gunicorn("-c", CONFIG_FILE, *args, *cls_args, env=profiling_env(report_dir, **settings))
    return off, on


def tree(root: Path, skip: tuple[str, ...] = ()) -> set[str]:
    """Every path under ``root`` (relative), links not followed."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in dirnames + filenames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root))
    return found


def every_file(directory: Path) -> Iterator[Path]:
    for dirpath, _, filenames in os.walk(directory):
        for name in filenames:
            yield Path(dirpath) / name


# --- (a) hostile paths ---

EIGHT_KB = 8192
HOSTILE_TARGETS: list[bytes] = [
    b"/../../../../etc/passwd",
    b"/a/./b/../../../../x",
    b"/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    b"/%2E%2E/%2e%2E/x",
    b"/..%2f..%2f..%2fx",
    b"/a%2fb%2f..%2f..%2fc",  # encoded slashes
    b"/a%252f..%252f..%252fb",  # double-encoded slashes
    b"/%252e%252e%252fetc",  # double-encoded dots
    b"/nul%00byte",
    b"/%00",
    b"/a%00/../../b",
    b"/%ff%fe%fd",  # invalid UTF-8
    b"/%c0%af%c0%ae",  # overlong encodings of / and .
    b"/%ed%a0%80",  # an encoded surrogate
    b"/%e2%82",  # a truncated sequence
    b"/caf%C3%A9",
    b"/..%5c..%5cwindows",
    b"/back\\slash",
    b"//etc/passwd",
    b"/.hidden",
    b"/-dash",
    b"/",
    b"/" + "é".encode() * 50,  # raw non-ASCII bytes on the request line
    b"/" + b"a" * (EIGHT_KB - 1),
    b"/" + b"%2f" * (EIGHT_KB // 3),
    b"/" + b"%ff" * (EIGHT_KB // 3),
    b"/" + b"../" * (EIGHT_KB // 3),
    b"/" + b"%2e%2e%2f" * (EIGHT_KB // 9),
    b"/no-length/..%2f..%2fx",  # the server sizes the body itself
    b"http://127.0.0.1/../../etc/passwd",  # absolute form
]


@pytest.mark.parametrize("worker", list(WORKERS))
def test_hostile_paths_write_only_safe_names_and_change_no_response(gunicorn, tmp_path, worker):
    box = tmp_path / "box"
    box.mkdir()
    report_dir, off_dir = box / "reports", box / "off"
    # No limit on the request line: 8 KB paths reach the app instead of being refused by the parser.
    off, on = off_and_on(
        gunicorn, worker, report_dir, off_dir, "--limit-request-line", "0", FORMATS="session,text"
    )
    before = tree(tmp_path, skip=("gunicorn-logs",))

    reached_app = 0
    for target in HOSTILE_TARGETS:
        request = raw_request(target)
        reply = ask(on, request)
        assert reply == ask(off, request), target[:80]
        if b"app GET " in reply.partition(b"\r\n\r\n")[2]:
            reached_app += 1
    assert on.stop() == 0
    assert off.stop() == 0

    # Nothing new anywhere but directly in the report directory (and its spool).
    created = tree(tmp_path, skip=("gunicorn-logs",)) - before
    assert not off_dir.exists()
    outside = {p for p in created if p.split(os.sep)[:2] != ["box", "reports"]}
    assert outside == set(), outside
    assert {e.name for e in os.scandir(report_dir) if e.is_dir(follow_symlinks=False)} <= {".spool"}
    assert spool_files(report_dir) == []
    for entry in os.scandir(report_dir):
        if entry.name == ".spool":
            continue
        assert entry.is_file(follow_symlinks=False), entry.name
        assert NAME.fullmatch(entry.name), entry.name
        assert len(os.fsencode(entry.name)) <= 255, entry.name

    # Every request that reached the app was profiled (so the names above were really tested).
    records = metadata_records(report_dir)
    assert reached_app >= len(HOSTILE_TARGETS) - 8, reached_app
    assert len(records) == reached_app
    assert {len(r["files"]) for r in records} == {2}


# --- (b) the token ---

#: (label, extra headers): none of these may profile.
NEAR_MISSES: list[tuple[str, list[tuple[str, str]]]] = [
    ("missing", []),
    ("empty", [(TOKEN_HEADER, "")]),
    ("wrong", [(TOKEN_HEADER, TOKEN[:-1] + ("0" if TOKEN[-1] != "0" else "1"))]),
    ("prefix", [(TOKEN_HEADER, TOKEN[:8])]),
    ("one-short", [(TOKEN_HEADER, TOKEN[:-1])]),
    ("one-long", [(TOKEN_HEADER, TOKEN + "x")]),
    ("twice", [(TOKEN_HEADER, TOKEN * 2)]),
    ("other-case", [(TOKEN_HEADER, TOKEN.upper())]),
    ("duplicated", [(TOKEN_HEADER, TOKEN), (TOKEN_HEADER, TOKEN)]),
    ("right-then-wrong", [(TOKEN_HEADER, TOKEN), (TOKEN_HEADER, "wrong")]),
    ("wrong-then-right", [(TOKEN_HEADER, "wrong"), (TOKEN_HEADER, TOKEN)]),
    ("other-header", [("X-Pyinstrument-Tokens", TOKEN)]),
    ("in-a-cookie", [("Cookie", f"{TOKEN_HEADER}={TOKEN}")]),
]
HITS: list[tuple[str, list[tuple[str, str]]]] = [
    ("right", [(TOKEN_HEADER, TOKEN)]),
    ("right-lower-case-name", [(TOKEN_HEADER.lower(), TOKEN)]),
]


@pytest.mark.parametrize("worker", list(WORKERS))
def test_only_the_right_token_profiles_and_it_is_never_kept(gunicorn, tmp_path, worker):
    report_dir = tmp_path / "reports"
    off, on = off_and_on(
        gunicorn,
        worker,
        report_dir,
        tmp_path / "off",
        "--log-level",
        "debug",
        "--access-logfile",
        "-",
        FORMATS="session,html,text",
        TOKEN=TOKEN,
        SAMPLE_RATE="0",
    )
    for label, headers in NEAR_MISSES + HITS:
        for path in (f"/t/{label}", f"/no-length/{label}"):
            request = raw_request(path.encode(), headers)
            assert ask(on, request) == ask(off, request), label
    assert on.stop() == 0
    assert off.stop() == 0

    records = metadata_records(report_dir)
    assert sorted(r["path"] for r in records) == sorted(
        f"{prefix}/{label}" for label, _ in HITS for prefix in ("/t", "/no-length")
    )
    assert {r["trigger"] for r in records} == {"token"}
    for path in every_file(report_dir):
        assert TOKEN.encode() not in path.read_bytes(), path.name
        assert TOKEN not in path.name
    assert TOKEN not in on.log
    assert "GET /t/right HTTP/1.1" in on.log  # the log did capture the requests


def test_the_token_is_compared_with_hmac_compare_digest(monkeypatch):
    """Read from the code, then seen at work: the comparison is hmac.compare_digest, and no other
    comparison touches the secret (an ``==`` would leak, through its timing, where a guess differs)."""
    source = textwrap.dedent(inspect.getsource(Selector.token_matches))
    assert "hmac.compare_digest(" in source
    compares = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Compare)]
    for node in compares:  # only `is None` checks
        assert all(isinstance(op, ast.Is) for op in node.ops), ast.unparse(node)
        assert all(isinstance(c, ast.Constant) and c.value is None for c in node.comparators)

    calls: list[tuple[bytes, bytes]] = []
    compare_digest = hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return compare_digest(a, b)

    monkeypatch.setattr(choosing.hmac, "compare_digest", recording)
    selector = Selector(0.0, token=TOKEN.encode())
    assert selector.decide("/", TOKEN) == choosing.TRIGGER_TOKEN
    assert selector.decide("/", TOKEN[:-1]) is None
    assert selector.decide("/", "x") is None
    assert calls == [
        (TOKEN.encode(), TOKEN.encode()),
        (TOKEN[:-1].encode(), TOKEN.encode()),
        (b"x", TOKEN.encode()),
    ]


# --- (c) nothing of the request but its method and path ---

ALL_FORMATS = "session,html,speedscope,text,pstats"


def markers() -> dict[str, str]:
    return {k: f"{k}mark{uuid.uuid4().hex}" for k in ("query", "cookie", "auth", "custom", "agent", "rid")}


def marked_request(path: str, m: dict[str, str]) -> bytes:
    target = f"{path}?q={m['query']}&email=someone%40example.com".encode()
    return raw_request(
        target,
        [
            ("Cookie", f"sessionid={m['cookie']}"),
            ("Authorization", f"Bearer {m['auth']}"),
            ("X-Custom", m["custom"]),
            ("User-Agent", m["agent"]),
            ("X-Request-Id", m["rid"]),
        ],
    )


@pytest.mark.parametrize("worker", list(WORKERS))
def test_by_default_no_query_header_or_cookie_is_stored(gunicorn, tmp_path, worker):
    report_dir = tmp_path / "reports"
    m = markers()
    cls_args = WORKERS[worker]
    server = gunicorn("-c", CONFIG_FILE, *cls_args, env=profiling_env(report_dir, FORMATS=ALL_FORMATS))
    for i in range(2):
        reply = ask(server, marked_request(f"/private/{i}", m))
        assert m["query"].encode() in reply  # the app saw it
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert sorted(r["path"] for r in records) == ["/private/0", "/private/1"]
    for record in records:
        assert set(record["files"]) == set(ALL_FORMATS.split(","))
        assert record["query"] is None and record["headers"] == {}
    files = list(every_file(report_dir))
    assert len(files) == 2 * 6
    for path in files:
        data = path.read_bytes()
        for what, marker in m.items():
            assert marker.encode() not in data, (what, path.name)
            assert marker not in path.name


@pytest.mark.parametrize("worker", list(WORKERS))
def test_opt_in_records_the_query_and_only_the_listed_headers(gunicorn, tmp_path, worker):
    report_dir = tmp_path / "reports"
    m = markers()
    env = profiling_env(
        report_dir, FORMATS=ALL_FORMATS, RECORD_QUERY="1", RECORD_HEADERS="User-Agent,X-Request-Id"
    )
    server = gunicorn("-c", CONFIG_FILE, *WORKERS[worker], env=env)
    ask(server, marked_request("/private/0", m))
    assert server.stop() == 0

    [record] = metadata_records(report_dir)
    assert record["query"] == f"q={m['query']}&email=someone%40example.com"
    assert record["headers"] == {"user-agent": m["agent"], "x-request-id": m["rid"]}
    recorded = {m["query"], m["agent"], m["rid"]}
    for path in every_file(report_dir):
        data = path.read_bytes()
        for marker in m.values():
            assert marker not in path.name
            if marker in recorded and path.name.endswith(".meta.json"):
                continue
            assert marker.encode() not in data, (marker, path.name)


# --- (d) file modes ---


@pytest.mark.parametrize("formats", ["session,html,speedscope", "text,pstats"])
@pytest.mark.parametrize(
    ("file_mode", "expected_file", "expected_dir"),
    [pytest.param(None, 0o600, 0o700, id="default"), pytest.param("0640", 0o640, 0o750, id="0640")],
)
def test_every_file_written_has_the_mode(
    gunicorn, report_dir, formats, file_mode, expected_file, expected_dir
):
    """Report files, metadata and the spool (sessions and jobs waiting for the renderer), with a
    umask of 0 so that nothing comes from it. The renderer is killed first, so that the spool holds
    the jobs long enough to be looked at; the server renders them when it stops."""
    settings = {"FORMATS": formats} | ({"FILE_MODE": file_mode} if file_mode else {})
    server = gunicorn("-c", CONFIG_FILE, *WORKERS["sync"], env=profiling_env(report_dir, **settings), umask=0)
    [renderer] = renderer_processes(report_dir)
    os.kill(renderer, signal.SIGKILL)  # a process this test's gunicorn started
    deadline = time.monotonic() + 10
    while renderer_processes(report_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    for i in range(3):
        ask(server, raw_request(f"/modes/{i}".encode()))
    deadline = time.monotonic() + 10
    while len([p for p in spool_files(report_dir) if p.name.endswith(".job.json")]) < 3:
        assert time.monotonic() < deadline, spool_files(report_dir)
        time.sleep(0.05)

    spool = report_dir / ".spool"
    spooled = spool_files(report_dir)
    assert len(spooled) == (3 if "session" in formats else 6), spooled
    assert {stat.S_IMODE(p.stat().st_mode) for p in spooled} == {expected_file}
    assert stat.S_IMODE(spool.stat().st_mode) == expected_dir

    assert server.stop() == 0
    assert stat.S_IMODE(report_dir.stat().st_mode) == expected_dir
    records = metadata_records(report_dir)
    assert len(records) == 3
    files = report_files(report_dir)
    assert len(files) == 3 * (len(formats.split(",")) + 1)
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {expected_file}
    assert spool_files(report_dir) == []


def test_plugin_off_writes_nothing(gunicorn, tmp_path):
    """The baseline the comparisons above rely on: the off server creates nothing at all."""
    off_dir = tmp_path / "off"
    server = gunicorn("-c", CONFIG_FILE, *WORKERS["sync"], env={f"{ENV_PREFIX}_DIR": str(off_dir)})
    reply = ask(server, raw_request(b"/x?y=1"))
    assert reply.endswith(echo("GET", "/x", "/x?y=1", "y=1"))
    assert server.stop() == 0
    assert not off_dir.exists()
