"""Retention on a live server: with GUNICORN_PYINSTRUMENT_MAX_REPORTS or MAX_BYTES set, the master's
helper process keeps the directory within the limit while requests come in (within about a second
of each report), and once the server has stopped exactly the newest reports within the limit
remain, whole and loadable. With FORMATS=session there is nothing to render: retention must run
all the same."""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from support import (
    CONFIG_FILE,
    FLASK_APP,
    METADATA_SUFFIX,
    get,
    load_session,
    metadata_records,
    profiling_env,
    spool_files,
)

#: How long the directory may stay over its limit: retention runs about once a second, in a
#: process at the lowest priority, on a machine busy with the requests.
LAG_SECONDS = 3.0
#: How long requests come in: long enough that the lag allowed is a bound, not everything.
LOAD_SECONDS = 2 * LAG_SECONDS + 1
MAX_REQUESTS = 1000
POLL_SECONDS = 0.05


def complete_names(directory: Path) -> list[str]:
    """The complete reports (those with a metadata record), by name."""
    try:
        return [n[: -len(METADATA_SUFFIX)] for n in os.listdir(directory) if n.endswith(METADATA_SUFFIX)]
    except FileNotFoundError:
        return []


def report_count(directory: Path) -> int:
    return len(complete_names(directory))


def report_bytes(directory: Path) -> int:
    """Bytes of every file of the complete reports (what MAX_BYTES limits)."""
    complete = set(complete_names(directory))
    total = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_file():
                continue
            if any(entry.name.startswith(name + ".") for name in complete):
                with contextlib.suppress(FileNotFoundError):
                    total += entry.stat().st_size
    return total


def load_while_polling(
    url: str, gap: float, directory: Path, measure: Callable[[Path], int]
) -> tuple[list[tuple[float, int]], list[float], list[str]]:
    """Send requests one after another from a thread for LOAD_SECONDS (at most MAX_REQUESTS),
    while measuring the directory every POLL_SECONDS: the measurements (monotonic time, value)
    until the last response, the time of each response, and the paths requested."""
    failures: list[str] = []
    answered: list[float] = []
    paths: list[str] = []

    def send() -> None:
        end = time.monotonic() + LOAD_SECONDS
        while time.monotonic() < end and len(paths) < MAX_REQUESTS:
            path = f"/seq/{len(paths)}"
            paths.append(path)
            status, _ = get(url + path)
            answered.append(time.monotonic())
            if status != 200:
                failures.append(f"{path}: {status}")
            time.sleep(gap)

    sender = threading.Thread(target=send)
    sender.start()
    samples = []
    while sender.is_alive():
        samples.append((time.monotonic(), measure(directory)))
        time.sleep(POLL_SECONDS)
    sender.join()
    assert failures == []
    return samples, answered, paths


def check_live(samples: list[tuple[float, int]], answered: list[float], limit: int, unit: int) -> None:
    """While the requests came in, the directory held at most ``limit`` plus what the last
    LAG_SECONDS of requests wrote (``unit`` each), and retention visibly removed reports."""
    values = [v for _, v in samples]
    summary = (
        f"limit {limit}, highest {max(values)}, {len(answered)} requests in {answered[-1] - answered[0]:.1f}s"
    )
    # Over the limit at times (else the load proves nothing), and reports removed while requests still
    # came in (nothing else removes them): retention ran during the load, not only at shutdown.
    assert answered[-1] - answered[0] > 2 * LAG_SECONDS, summary  # else the bound below holds anyway
    assert max(values) > limit, summary
    assert any(b < a for a, b in itertools.pairwise(values)), summary
    for moment, value in samples:
        recent = sum(1 for t in answered if moment - LAG_SECONDS < t <= moment)
        assert value <= limit + recent * unit, f"{value} at +{moment - samples[0][0]:.2f}s; {summary}"


def check_final(directory: Path, records: list[dict], paths: list[str]) -> None:
    """The remaining reports are the newest ones, whole: every file loads; nothing else is left."""
    assert records, "no report left"
    assert [r["path"] for r in records] == paths[-len(records) :]
    expected_files = set()
    for record in records:
        session = load_session(directory / record["files"]["session"])
        assert session.sample_count == record["samples"]
        for filename in record["files"].values():
            assert (directory / filename).stat().st_size > 0
        expected_files |= {record["name"] + METADATA_SUFFIX, *record["files"].values()}
    assert {p.name for p in directory.iterdir() if p.is_file()} == expected_files
    assert spool_files(directory) == []


def test_max_reports_on_a_live_server(gunicorn, report_dir):
    limit = 5
    env = profiling_env(report_dir, FORMATS="session", MAX_REPORTS=str(limit))
    server = gunicorn("-c", CONFIG_FILE, "-k", "sync", "-w", "2", FLASK_APP, env=env)
    samples, answered, paths = load_while_polling(server.url, 0.02, report_dir, report_count)
    assert server.stop() == 0

    check_live(samples, answered, limit, 1)
    records = metadata_records(report_dir)
    assert len(records) == limit
    check_final(report_dir, records, paths)
    assert all(set(r["files"]) == {"session"} for r in records)


def test_max_bytes_on_a_live_server_with_rendering(gunicorn, report_dir):
    limit = 500_000  # a report with its HTML is about 80 kB: five or six fit
    env = profiling_env(report_dir, FORMATS="session,html", MAX_BYTES="500KB")
    server = gunicorn("-c", CONFIG_FILE, "-k", "sync", "-w", "2", FLASK_APP, env=env)
    samples, answered, paths = load_while_polling(server.url, 0.04, report_dir, report_bytes)
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert all(set(r["files"]) == {"session", "html"} for r in records)
    sizes = [
        sum((report_dir / f).stat().st_size for f in [r["name"] + METADATA_SUFFIX, *r["files"].values()])
        for r in records
    ]
    check_live(samples, answered, limit, max(sizes) * 2)
    # Within the limit, and not pruned further than needed (the reports are about the same size,
    # and one more would not have fitted).
    assert sum(sizes) <= limit
    assert sum(sizes) + 2 * max(sizes) > limit, sizes
    assert len(records) >= 3
    check_final(report_dir, records, paths)
    for record in records:
        assert "<html" in (report_dir / record["files"]["html"]).read_text().lower()
