"""The sampler's budget (GUNICORN_PYINSTRUMENT_MAX_OVERHEAD) on real gunicorn, and the sampling
every report records: interval, samples, rate, the sampler's CPU and share, over budget.

The budget is a share of one CPU (of wall-clock time): the sampler's CPU seconds over a span are at
most the budget times the span, give or take one adjustment period. Samples are made dear by
``tests/apps/budget_app.py``'s ``/deep`` (CPU burnt at the bottom of 1,500 frames of its own, which
every sample walks) and cheap by its ``/idle`` (a sleep near the top of the stack).
"""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from support import CONFIG_FILE, get, get_many, load_session, metadata_records, profiling_env

from gunicorn_pyinstrument import cli

BUDGET_APP = "tests.apps.budget_app:app"
FLASK_APP = "tests.apps.flask_app:app"
GTHREAD = ("-k", "gthread", "--threads", "4", "-w", "1")
SYNC = ("-k", "sync", "-w", "1")
#: Over a span wholly under load, the sampler's CPU may exceed the budget by this many points of
#: one CPU: a window can hold the load's first adjustment period, sampled at the rate the idle
#: worker had before, and the interval is set from the period before, so a dearer period runs over.
TOLERANCE = 0.015
SAMPLING_KEYS = ("interval", "samples", "rate", "sampler_cpu", "sampler_share", "over_budget")


def windows(directory: Path, longer_than: float = 0.0) -> list[dict[str, Any]]:
    """The window reports; ``longer_than``: only those, so that a rate is over a dozen samples or
    more (the last window, written at exit, can be a few milliseconds long)."""
    return [r for r in metadata_records(directory) if r["kind"] == "worker" and r["duration"] > longer_than]


def cpu_per_second(record: dict[str, Any]) -> float:
    """The sampler's CPU over the report, as a share of one CPU: what the budget bounds."""
    return float(record["sampler_cpu"]) / float(record["duration"])


def test_under_load_the_rate_falls_within_the_budget_and_climbs_back_when_idle(gunicorn, report_dir):
    """gthread, four threads burning CPU at the bottom of deep stacks: each sample walks them all.
    Per-worker mode, one-second windows: the windows under load are sampled well below the
    interval, with the sampler's CPU within the budget; those of the idle worker after it, at the
    interval again."""
    budget, interval = 0.05, 0.01
    env = profiling_env(
        report_dir,
        ENGINE="sampler",
        MODE="worker",
        FLUSH_INTERVAL="1",
        INTERVAL=str(interval),
        MAX_OVERHEAD="5%",
        FORMATS="session",
    )
    server = gunicorn("-c", CONFIG_FILE, *GTHREAD, BUDGET_APP, env=env)
    assert get(server.url + "/idle?s=1.2")[0] == 200
    load_began = time.time()
    results = get_many([server.url + "/deep?s=3.5&depth=1500"] * 4, concurrency=4)
    load_ended = time.time()
    assert [status for status, _ in results] == [200] * 4
    assert get(server.url + "/idle?s=2.5")[0] == 200
    assert server.stop() == 0

    for record in windows(report_dir):
        for key in SAMPLING_KEYS:
            assert record[key] is not None, (key, record)
    records = windows(report_dir, longer_than=0.5)
    loaded = [r for r in records if r["start"] >= load_began - 0.1 and r["end"] <= load_ended + 0.1]
    idle = [r for r in records if r["start"] >= load_ended + 0.1]
    assert loaded, records
    assert idle, records
    for record in loaded:
        # The rate falls: each sample costs more than the budget allows at the interval.
        assert record["rate"] < 0.7 / interval, record
        assert cpu_per_second(record) <= budget + TOLERANCE, record
        # The share of the worker's own CPU is that, when the worker kept one CPU busy; on a shared
        # machine it may have had less, and the same CPU is then a larger share of it.
        worker_cpu = record["sampler_cpu"] / record["sampler_share"]
        assert record["sampler_share"] <= (budget + TOLERANCE) * max(1.0, record["duration"] / worker_cpu)
    for record in idle:
        # Idle: the samples are cheap again, and the sampler back at the interval.
        assert record["rate"] >= 0.8 / interval, record
        assert cpu_per_second(record) <= budget + TOLERANCE, record


def test_a_small_budget_cuts_the_rate_and_a_large_one_keeps_the_interval(gunicorn, tmp_path):
    """Request mode on sync, one idle request after another: at 0.1 % the sampler slows down to
    about its floor (10 Hz), at 5 % it keeps the interval (100 Hz). In per-worker mode, a budget
    that even the floor exceeds gives windows marked over budget."""
    common = {"ENGINE": "sampler", "INTERVAL": "0.01", "FORMATS": "session"}
    small = gunicorn(
        "-c",
        CONFIG_FILE,
        *SYNC,
        BUDGET_APP,
        env=profiling_env(tmp_path / "small", **common, MAX_OVERHEAD="0.1%"),
    )
    large = gunicorn(
        "-c",
        CONFIG_FILE,
        *SYNC,
        BUDGET_APP,
        env=profiling_env(tmp_path / "large", **common, MAX_OVERHEAD="5%"),
    )
    tiny = gunicorn(
        "-c",
        CONFIG_FILE,
        *SYNC,
        BUDGET_APP,
        env=profiling_env(
            tmp_path / "tiny", **common, MODE="worker", FLUSH_INTERVAL="1", MAX_OVERHEAD="0.01%"
        ),
    )

    def two_requests(url: str) -> None:
        # The first lets the budget take hold; the second follows before the sampler parks.
        for _ in range(2):
            assert get(url + "/idle?s=1")[0] == 200

    threads = [threading.Thread(target=two_requests, args=(s.url,)) for s in (small, large, tiny)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for server in (small, large, tiny):
        assert server.stop() == 0

    second_small = metadata_records(tmp_path / "small")[-1]
    second_large = metadata_records(tmp_path / "large")[-1]
    assert second_small["rate"] < 40, second_small
    assert second_large["rate"] >= 80, second_large
    for record in (second_small, second_large):
        assert record["interval"] == 0.01
        assert record["over_budget"] is None  # said of windows only
    tiny_windows = windows(tmp_path / "tiny", longer_than=0.5)
    assert tiny_windows
    assert all(w["over_budget"] is True for w in tiny_windows), tiny_windows
    assert all(w["rate"] <= 15 for w in tiny_windows[1:]), tiny_windows  # the floor, after the first


@pytest.mark.parametrize("engine", ["sampler", "pyinstrument"])
def test_every_report_records_its_sampling(gunicorn, tmp_path, engine):
    """Both modes of one engine side by side: every field of the sampling in every record, and in
    ``list --json``."""
    interval = "0.005" if engine == "sampler" else "0.001"
    common = {"ENGINE": engine, "INTERVAL": interval, "FORMATS": "session"}
    directories = {"request": tmp_path / "request", "worker": tmp_path / "worker"}
    servers = {
        "request": gunicorn(
            "-c", CONFIG_FILE, *SYNC, FLASK_APP, env=profiling_env(directories["request"], **common)
        ),
        "worker": gunicorn(
            "-c",
            CONFIG_FILE,
            *SYNC,
            FLASK_APP,
            env=profiling_env(directories["worker"], **common, MODE="worker", FLUSH_INTERVAL="1"),
        ),
    }
    for server in servers.values():
        for _ in range(3):
            assert get(server.url + "/alpha?s=0.1")[0] == 200
    for server in servers.values():
        assert server.stop() == 0

    for mode, directory in directories.items():
        records = metadata_records(directory)
        assert records, mode
        for record in records:
            assert record["kind"] == mode
            check_sampling(record, engine, float(interval), directory)
        out = io.StringIO()
        assert (
            cli.main(["--dir", str(directory), "list", "--json", "--ascending", "--limit", "0"], out=out) == 0
        )
        listed = {item["name"]: item for item in json.loads(out.getvalue())}
        for record in records:
            assert {k: listed[record["name"]][k] for k in SAMPLING_KEYS} == {
                k: record[k] for k in SAMPLING_KEYS
            }


def check_sampling(record: dict[str, Any], engine: str, interval: float, directory: Path) -> None:
    session = load_session(directory / record["files"]["session"])
    duration = float(record["duration"])
    assert record["interval"] == interval
    assert record["samples"] == session.sample_count > 0
    if engine == "pyinstrument":
        # Its rate is its samples over the span; its cost is in the profiled thread, not measured.
        assert record["rate"] == pytest.approx(record["samples"] / duration, rel=0.01, abs=0.01)
        assert record["sampler_cpu"] is None
        assert record["sampler_share"] is None
        assert record["over_budget"] is None
        return
    # Ticks per second, never above the rate asked for (some slack for the clock readings).
    assert 0 < record["rate"] <= 1.1 / interval, record
    assert 0 < record["sampler_cpu"] < duration, record
    assert 0 < record["sampler_share"] <= 1, record
    if record["kind"] == "worker":
        assert isinstance(record["over_budget"], bool)
        assert record["over_budget"] == (record["sampler_cpu"] > 0.01 * duration)  # the default, 1 %
    else:
        assert record["over_budget"] is None
