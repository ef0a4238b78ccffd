"""Process lifecycle: --preload keeps pyinstrument out of the master; a graceful stop loses nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import (
    CONFIG_FILE,
    FLASK_APP,
    PRELOAD_APP,
    WSGI_APP,
    get,
    get_many,
    metadata_records,
    profiling_env,
    raw_exchange,
    renderer_processes,
    report_files,
    report_functions,
    spool_files,
    wait_for_metadata,
)


def test_preload_does_not_import_pyinstrument_in_the_master(gunicorn, tmp_path, report_dir):
    probe = tmp_path / "probe.jsonl"
    env = profiling_env(report_dir, FORMATS="session,text")
    env["PRELOAD_PROBE_FILE"] = str(probe)
    server = gunicorn("-c", CONFIG_FILE, "--preload", "-w", "2", PRELOAD_APP, env=env)
    replies = get_many([server.url + "/probe"] * 4, concurrency=2)
    assert replies == [(200, b"probed\n")] * 4
    assert server.stop() == 0

    records = [json.loads(line) for line in probe.read_text().splitlines()]
    # Imported once, in the master (not in each worker), and pyinstrument was not loaded there.
    assert [r["pid"] for r in records] == [server.pid]
    assert records[0]["pyinstrument_modules"] == []

    reports = metadata_records(report_dir)
    assert len(reports) == 4
    for record in reports:
        assert record["pid"] != server.pid
        assert "probe_work" in report_functions(report_dir, record)
        assert "text" in record["files"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_shutdown_loses_no_report(gunicorn, report_dir, sig):
    env = profiling_env(report_dir, FORMATS="session,html")
    server = gunicorn("-c", CONFIG_FILE, "-w", "2", FLASK_APP, env=env)
    [renderer] = renderer_processes(report_dir)
    # A low-priority process (nice 19, and SCHED_IDLE where there is one) in its own process group
    # (a Ctrl-C for gunicorn's group does not reach it). It lowers its priority once started.
    idle = getattr(os, "SCHED_IDLE", None)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not (
        os.getpriority(os.PRIO_PROCESS, renderer) == 19
        and (idle is None or os.sched_getscheduler(renderer) == idle)
    ):
        time.sleep(0.02)
    assert os.getpriority(os.PRIO_PROCESS, renderer) == 19
    if idle is not None:
        assert os.sched_getscheduler(renderer) == idle
    assert os.getpgid(renderer) != os.getpgid(server.pid)

    # While it runs, a watcher checks that a metadata record never appears before its files.
    incomplete: list[str] = []
    stop_watching = threading.Event()

    def watch() -> None:
        while not stop_watching.is_set():
            for meta in report_dir.glob("*.meta.json"):
                try:
                    files = json.loads(meta.read_text())["files"]
                except (OSError, ValueError):
                    incomplete.append(f"unreadable {meta.name}")
                    continue
                incomplete.extend(name for name in files.values() if not (report_dir / name).is_file())
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        replies = get_many([server.url + f"/alpha?s=0.01&i={i}" for i in range(30)], concurrency=4)
        assert replies == [(200, b"alpha")] * 30
        # Stop right away: the writer threads and the renderer still have work queued.
        started = time.monotonic()
        assert server.stop(sig, wait_renderer=False) == 0
        assert time.monotonic() - started < 15
        # The reports are complete when the master has exited, unless the renderer (at nice 19) was
        # starved by a busy machine for the 10 s the master waits: it then goes on alone, as documented.
        if "is still rendering" in server.log:
            server.wait_renderer()
    finally:
        stop_watching.set()
        watcher.join()
    assert incomplete == []

    records = metadata_records(report_dir)
    assert len(records) == 30
    assert len({r["name"] for r in records}) == 30
    assert len({r["pid"] for r in records}) <= 2
    for record in records:
        assert set(record["files"]) == {"session", "html"}
        for name in record["files"].values():
            assert (report_dir / name).stat().st_size > 0
    assert spool_files(report_dir) == []
    assert [p.name for p in report_dir.iterdir() if p.name.startswith(".tmp-")] == []
    assert renderer_processes(report_dir) == []


def test_recycled_workers_flush_their_reports(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session,text")
    server = gunicorn("-c", CONFIG_FILE, "-w", "1", "--max-requests", "3", FLASK_APP, env=env)
    for _ in range(8):
        assert get(server.url + "/alpha?s=0.01") == (200, b"alpha")
    assert server.stop() == 0
    records = metadata_records(report_dir)
    # Workers 1 and 2 served 3 requests each and were replaced; worker 3 served the last 2.
    assert [r["worker"]["age"] for r in records] == [1, 1, 1, 2, 2, 2, 3, 3]
    assert len({r["pid"] for r in records}) == 3
    assert spool_files(report_dir) == []


def test_reload_keeps_profiling(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session,html")
    server = gunicorn("-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=env)
    assert get(server.url + "/alpha?s=0.01") == (200, b"alpha")
    [first] = server.worker_pids()
    os.kill(server.pid, signal.SIGHUP)
    deadline = time.monotonic() + 15
    while not set(server.booted_workers()) - {first} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.worker_pids()) == 2, server.log
    assert get(server.url + "/beta?s=0.01") == (200, b"beta")
    assert server.stop() == 0
    records = metadata_records(report_dir)
    assert [r["path"] for r in records] == ["/alpha", "/beta"]
    assert records[0]["pid"] != records[1]["pid"]
    assert all(set(r["files"]) == {"session", "html"} for r in records)
    assert spool_files(report_dir) == []
    assert renderer_processes(report_dir) == []


def test_full_queue_drops_and_counts_without_blocking(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session", QUEUE_SIZE="1")
    server = gunicorn("-c", CONFIG_FILE, "-k", "gthread", "--threads", "4", "-w", "1", FLASK_APP, env=env)
    replies = get_many([server.url + "/alpha?s=0.005"] * 60, concurrency=8)
    assert replies == [(200, b"alpha")] * 60
    assert server.stop() == 0
    kept = len(metadata_records(report_dir))
    assert 1 <= kept <= 60
    summary = re.search(r"(\d+) reports written, (\d+) dropped \(queue full\), (\d+) failed", server.log)
    if kept < 60:  # some were dropped (likely with a queue of 1): it is said, and the counts add up
        assert "writer queue full" in server.log
        assert summary is not None, server.log
        written, dropped, failed = map(int, summary.groups())
        assert (written, written + dropped, failed) == (kept, 60, 0)


def test_file_modes_do_not_depend_on_the_umask(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session,text", FILE_MODE="0640")
    server = gunicorn("-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=env, umask=0o077)
    assert get(server.url + "/alpha?s=0.01") == (200, b"alpha")
    assert server.stop() == 0
    assert stat.S_IMODE(os.stat(report_dir).st_mode) == 0o750
    files = report_files(report_dir)
    assert len(files) == 3
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in files} == {0o640}


@pytest.mark.parametrize(
    "formats",
    [
        "session,html",
        pytest.param(
            "text",
        ),
    ],
)
def test_directory_removed_while_running_is_recreated_private(gunicorn, report_dir, formats):
    server = gunicorn("-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=profiling_env(report_dir, FORMATS=formats))
    assert get(server.url + "/alpha?s=0.01") == (200, b"alpha")
    assert len(wait_for_metadata(report_dir, 1)) == 1
    shutil.rmtree(report_dir)
    assert get(server.url + "/beta?s=0.01") == (200, b"beta")
    assert server.stop() == 0
    assert [r["path"] for r in metadata_records(report_dir)] == ["/beta"]
    assert spool_files(report_dir) == []
    assert stat.S_IMODE(os.stat(report_dir).st_mode) == 0o700


def test_reports_complete_after_the_renderer_died(gunicorn, report_dir):
    server = gunicorn(
        "-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=profiling_env(report_dir, FORMATS="session,html")
    )
    [renderer] = renderer_processes(report_dir)
    os.kill(renderer, signal.SIGKILL)  # as the OOM killer would; a process this test's gunicorn started
    deadline = time.monotonic() + 10
    while renderer_processes(report_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    for _ in range(3):
        assert get(server.url + "/alpha?s=0.01") == (200, b"alpha")
    assert server.stop() == 0
    assert spool_files(report_dir) == []
    records = metadata_records(report_dir)
    assert len(records) == 3
    assert all(set(r["files"]) == {"session", "html"} for r in records)


@pytest.mark.parametrize("recovery", ["next-server", "renderer-cli"])
def test_jobs_left_by_a_crash_are_rendered_later(gunicorn, report_dir, recovery):
    env = profiling_env(report_dir, FORMATS="session,text")
    server = gunicorn("-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=env)
    [renderer] = renderer_processes(report_dir)
    os.kill(renderer, signal.SIGKILL)  # a process this test's gunicorn started
    for _ in range(3):
        assert get(server.url + "/alpha?s=0.01") == (200, b"alpha")
    deadline = time.monotonic() + 10
    while len([p for p in spool_files(report_dir) if p.name.endswith(".job.json")]) < 3:
        assert time.monotonic() < deadline, spool_files(report_dir)
        time.sleep(0.05)
    server.kill()  # kill -9 of the whole server: nothing more runs
    assert metadata_records(report_dir) == []

    if recovery == "next-server":
        server = gunicorn("-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=env)
        assert server.stop() == 0
    else:
        result = subprocess.run(
            [sys.executable, "-m", "gunicorn_pyinstrument.helper", "--once", str(report_dir)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "rendered 3 report(s)"
    records = metadata_records(report_dir)
    assert len(records) == 3
    for record in records:
        assert set(record["files"]) == {"session", "text"}
        assert "alpha_work" in (report_dir / record["files"]["text"]).read_text()
    assert spool_files(report_dir) == []


def test_two_servers_share_one_directory(gunicorn, tmp_path):
    """Two gunicorn masters (two renderers) on one directory, whose path has a space and non-ASCII."""
    report_dir = tmp_path / "shared reports é"
    env = profiling_env(report_dir, FORMATS="text,html")  # the session waits in the spool
    first = gunicorn("-c", CONFIG_FILE, "-w", "2", FLASK_APP, env=env)
    second = gunicorn("-c", CONFIG_FILE, "-w", "2", FLASK_APP, env=env)
    urls = [server.url + f"/alpha?s=0.005&i={i}" for i in range(20) for server in (first, second)]
    assert get_many(urls, concurrency=8) == [(200, b"alpha")] * 40
    assert first.stop() == 0
    assert second.stop() == 0
    records = metadata_records(report_dir)
    assert len(records) == 40
    assert len({r["name"] for r in records}) == 40
    assert all(set(r["files"]) == {"text", "html"} for r in records)
    assert spool_files(report_dir) == []  # no job left, none set aside as failed
    assert "cannot render" not in first.log + second.log


LOST_AFTER_WORKER_EXIT = (
    "the request's post_request runs after worker_exit has closed the writer (writer.py Writer.submit "
    "enqueues into a queue whose thread has stopped: the report is lost without a word)"
)


@pytest.mark.parametrize(
    ("worker", "sig", "mid_body_error"),
    [
        ("sync", signal.SIGTERM, False),
        ("gthread", signal.SIGTERM, False),
        ("sync", signal.SIGINT, False),
        pytest.param(
            "gthread",
            signal.SIGTERM,
            True,
        ),
        pytest.param(
            "gthread",
            signal.SIGINT,
            False,
        ),
    ],
    ids=[
        "sync-SIGTERM",
        "gthread-SIGTERM",
        "sync-SIGINT",
        "gthread-SIGTERM-after-mid-body-error",
        "gthread-SIGINT",
    ],
)
def test_request_in_flight_at_shutdown_is_reported(gunicorn, report_dir, worker, sig, mid_body_error):
    args = ["-k", worker, "-w", "1"] + (["--threads", "4"] if worker == "gthread" else [])
    started = report_dir.parent / "work-started"
    env = profiling_env(report_dir, FORMATS="session")
    env["WSGI_APP_STARTED_FILE"] = str(started)
    server = gunicorn("-c", CONFIG_FILE, *args, WSGI_APP, env=env)
    # A first report, so that the worker's writer thread is running before the stop.
    assert get(server.url + "/work?s=0.01") == (200, b"ok\n")
    if mid_body_error:
        raw_exchange(server.port, b"GET /raise-in-body?n=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    before = len(wait_for_metadata(report_dir, 2 if mid_body_error else 1))
    started.unlink()
    with ThreadPoolExecutor(max_workers=1) as pool:
        # Long enough to outlast a stopping gthread worker even on a busy machine.
        seconds = 2.0 if worker == "gthread" else 0.6
        in_flight = pool.submit(get, server.url + f"/work?s={seconds}")
        # Signal once the app is running the request (its profiler started before that).
        deadline = time.monotonic() + 10
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert started.exists()
        assert server.stop(sig) == 0
        status, _ = in_flight.result(timeout=30)
    # A graceful stop lets it finish; sync's quick stop interrupts it (gunicorn answers 500).
    assert status == (500 if (worker, sig) == ("sync", signal.SIGINT) else 200)
    records = metadata_records(report_dir)
    assert len(records) == before + 1, [r["path"] for r in records]
    assert records[-1]["path"] == "/work"
    assert records[-1]["duration"] >= (0.6 if status == 200 else 0)
