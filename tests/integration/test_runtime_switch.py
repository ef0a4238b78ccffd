"""Switching profiling on and off without a restart, on real gunicorn: the schedule (aligned to the
clock) and the control file (``touch`` / ``rm``, looked at about once a second), in request mode
and in worker mode."""

from __future__ import annotations

import time

import pytest
from support import (
    CONFIG_FILE,
    get,
    metadata_records,
    profiling_env,
    report_files,
    report_functions,
    wait_for_metadata,
)

INTERLEAVED_APP = "tests.apps.interleaved_app:app"
SYNC = ["-k", "sync", "-w", "1", "--timeout", "2"]  # an idle sync worker beats every second
TOKEN = "switch-token-0123456789"
TOKEN_HEADERS = {"X-Pyinstrument-Token": TOKEN}
CHECK_WAIT = 1.3  # a little more than the control file's check interval (1 s)


def closed_schedule(clear_for: float = 60.0) -> str:
    """A one-second window per period, chosen so that it is certainly closed from a few seconds
    ago until ``clear_for`` seconds from now (windows are aligned to the epoch)."""
    now = time.time()
    for period in (3600, 3000, 2777, 2003):
        phase = now % period
        if 5 <= phase <= period - clear_for:
            return f"1s/{period}s"
    pytest.skip("every candidate schedule opens within a minute")  # never in practice


def start(gunicorn, report_dir, **settings: str):
    env = profiling_env(report_dir, FORMATS="session", **settings)
    return gunicorn("-c", CONFIG_FILE, *SYNC, INTERLEAVED_APP, env=env)


def functions_in(report_dir, records) -> set[str]:
    names: set[str] = set()
    for record in records:
        names |= report_functions(report_dir, record)
    return names


def requests_for(server, seconds: float, target: str) -> None:
    """Keep the worker busy now and then for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert get(server.url + target)[0] == 200
        time.sleep(0.2)


# --- the schedule ---


def test_request_mode_closed_schedule_profiles_only_the_token(gunicorn, report_dir):
    server = start(gunicorn, report_dir, SCHEDULE=closed_schedule(), TOKEN=TOKEN)
    for _ in range(3):
        assert get(server.url + "/alpha?s=0.02")[0] == 200
    assert get(server.url + "/beta?s=0.05", TOKEN_HEADERS)[0] == 200
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert [(r["path"], r["trigger"]) for r in records] == [("/beta", "token")]
    assert "beta_work" in functions_in(report_dir, records)


def test_worker_mode_closed_schedule_writes_no_window(gunicorn, report_dir):
    server = start(gunicorn, report_dir, MODE="worker", FLUSH_INTERVAL="1", SCHEDULE=closed_schedule())
    requests_for(server, 2.5, "/alpha?s=0.05")  # heartbeats that would close several windows
    assert server.stop() == 0
    assert metadata_records(report_dir) == []
    assert report_files(report_dir) == []


@pytest.mark.parametrize("mode", ["request", "worker"])
def test_schedule_always_open_profiles(gunicorn, report_dir, mode):
    extra = {"MODE": "worker", "FLUSH_INTERVAL": "1"} if mode == "worker" else {}
    server = start(gunicorn, report_dir, SCHEDULE="1h/1h", **extra)
    requests_for(server, 1.5 if mode == "worker" else 0.1, "/alpha?s=0.05")
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert records
    assert {r["kind"] for r in records} == {mode}
    assert "alpha_work" in functions_in(report_dir, records)
    if mode == "request":
        assert {r["trigger"] for r in records} == {"sample"}


# --- the control file ---


def test_control_file_switches_request_mode(gunicorn, report_dir, tmp_path):
    control = tmp_path / "profiling-on"
    server = start(gunicorn, report_dir, CONTROL_FILE=str(control), TOKEN=TOKEN)

    # Absent: nothing is profiled, not even with the token.
    assert get(server.url + "/beta?s=0.02")[0] == 200
    assert get(server.url + "/beta?s=0.02", TOKEN_HEADERS)[0] == 200

    control.touch()
    time.sleep(CHECK_WAIT)
    assert get(server.url + "/alpha?s=0.02")[0] == 200
    assert get(server.url + "/alpha?s=0.02", TOKEN_HEADERS)[0] == 200
    assert get(server.url + "/alpha?s=0.02")[0] == 200
    assert len(wait_for_metadata(report_dir, 3)) == 3

    control.unlink()
    time.sleep(CHECK_WAIT)
    assert get(server.url + "/beta?s=0.02")[0] == 200
    assert get(server.url + "/beta?s=0.02", TOKEN_HEADERS)[0] == 200
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert [r["path"] for r in records] == ["/alpha"] * 3
    assert sorted(r["trigger"] for r in records) == ["sample", "sample", "token"]


def test_control_file_switches_worker_mode(gunicorn, report_dir, tmp_path):
    control = tmp_path / "profiling-on"
    server = start(gunicorn, report_dir, MODE="worker", FLUSH_INTERVAL="1", CONTROL_FILE=str(control))

    # Absent: no window, however many heartbeats and requests.
    requests_for(server, 2.2, "/beta?s=0.02")
    assert metadata_records(report_dir) == []

    # On: the next heartbeat that looks at the file opens a window; they turn over every second.
    control.touch()
    requests_for(server, 2.5, "/alpha?s=0.05")
    switched_on = wait_for_metadata(report_dir, 1, timeout=5)
    assert switched_on, server.log
    assert {r["kind"] for r in switched_on} == {"worker"}

    # Off again: the open window is written when the heartbeat sees the file gone, then nothing.
    control.unlink()
    time.sleep(2.5)
    off_since = time.time()
    requests_for(server, 1.0, "/beta?s=0.05")
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert len(records) >= len(switched_on)
    assert all(r["end"] <= off_since for r in records), (off_since, records)
    names = functions_in(report_dir, records)
    assert "alpha_work" in names
    assert "beta_work" not in names
