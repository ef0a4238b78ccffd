"""Hostile request paths never put a file anywhere but directly inside the report directory."""

from __future__ import annotations

import os

from support import CONFIG_FILE, FLASK_APP, metadata_records, profiling_env, raw_exchange

HOSTILE_PATHS = [
    "/../../../../etc/passwd",
    "/a/./b/../../..",
    "/%2e%2e%2f%2e%2e%2fescape",
    "/%2e%2e/%2e%2e/escape",
    "/x%252fy%252f..%252f..",
    "/nul%00byte",
    "/%ff%fe%c0%af",
    "/%E2%98%83-snow/%F0%9F%92%A9",
    "/.hidden",
    "/-dash-start",
    "//double//slashes//",
    "/back\\slash",
    "/" + "a" * 3900,
    "/" + "%2f" * 1300,
    "/" + "é" * 10,  # raw non-ASCII bytes on the request line
]


def test_hostile_paths_stay_inside_the_directory(gunicorn, tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    report_dir = box / "reports"
    env = profiling_env(report_dir, FORMATS="session,html,text")
    server = gunicorn("-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=env)
    answered = 0
    for path in HOSTILE_PATHS:
        request = b"GET " + path.encode("utf-8") + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        reply = raw_exchange(server.port, request)
        assert reply.startswith(b"HTTP/1.1 "), (path[:60], reply[:200])
        if not reply.startswith(b"HTTP/1.1 400"):  # refused by gunicorn's parser: no hook runs
            answered += 1
    assert server.stop() == 0

    # Nothing outside the report directory, nothing in it but files and the spool.
    assert sorted(os.listdir(box)) == ["reports"]
    subdirs = [e.name for e in os.scandir(report_dir) if e.is_dir(follow_symlinks=False)]
    assert subdirs == [".spool"]
    assert os.listdir(report_dir / ".spool") == []
    for entry in os.scandir(report_dir):
        if entry.name == ".spool":
            continue
        assert entry.is_file(follow_symlinks=False), entry.name
        assert len(entry.name.encode()) < 255, entry.name
        assert entry.name[0].isdigit(), entry.name
        assert set(entry.name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")

    records = metadata_records(report_dir)
    assert answered >= len(HOSTILE_PATHS) - 3, answered
    assert len(records) == answered
    for record in records:
        assert len(record["files"]) == 3
        for name in record["files"].values():
            assert os.path.dirname(name) == ""
            assert (report_dir / name).is_file()
