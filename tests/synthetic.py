"""Synthetic reports for unit tests: pyinstrument sessions made by hand and written by the
project's own Writer, exactly as a worker writes them."""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

from pyinstrument.session import Session

from gunicorn_pyinstrument.directory import dumps
from gunicorn_pyinstrument.logs import ThrottledLog
from gunicorn_pyinstrument.report import DropFacts, Dropped, Report, RequestFacts, WindowFacts, WorkerIdentity
from gunicorn_pyinstrument.worker.writer import Writer

T0 = 1_764_000_000.0  # 2025-11-24T16:00:00Z, a fixed start time for synthetic reports
THREAD = "MainThread\x00<thread>\x00140000"

_sequence = itertools.count(1)


def session_of(start: float, duration: float, *functions: str) -> Session:
    """A session whose samples are in ``functions`` (one 1 ms sample each, under one thread)."""
    records = [([THREAD, f"{name}\x00/app/views.py\x0010"], 0.001) for name in functions or ("view",)]
    return Session(
        frame_records=records,
        start_time=start,
        duration=duration,
        min_interval=0.001,
        max_interval=0.001,
        sample_count=len(records),
        start_call_stack=[THREAD],
        target_description="synthetic",
        cpu_time=0.0,
        sys_path=[],
        sys_prefixes=[],
    )


def make_writer(directory: Path | str) -> Writer:
    return Writer(str(directory), 0o600, 4, ThrottledLog(logging.getLogger("test")))


def write_report(
    directory: Path | str,
    *,
    method: str = "GET",
    path: str = "/api/users/1",
    status: int | None = 200,
    start: float = T0,
    duration: float = 0.1,
    label: str | None = None,
    pid: int = 100,
    instance: str = "aaaaaa",
    hostname: str = "web-1",
    formats: tuple[str, ...] = ("session",),
    window: bool = False,
    writer: Writer | None = None,
    dropped: Dropped | None = None,
    drops_only: bool = False,
) -> Report:
    """One report, written by the project's Writer as a worker would; ``dropped``: the reports its
    worker dropped before it; ``drops_only``: a record of those alone, as a worker leaves at exit."""
    worker = WorkerIdentity(pid=pid, age=1, worker_class="SyncWorker", hostname=hostname, instance=instance)
    facts: RequestFacts | WindowFacts | DropFacts
    if drops_only:
        facts = DropFacts(started_at=start, duration=duration)
    elif window:
        facts = WindowFacts(started_at=start, duration=duration)
    else:
        facts = RequestFacts(method, path, status, start, duration, "sample")
    session = session_of(start, duration)
    report = Report(
        Report.make_name(facts, worker, next(_sequence)),
        facts,
        worker,
        label,
        () if drops_only else formats,
        0 if drops_only else session.sample_count,
        0.001,
        dropped=dropped or Dropped(),
    )
    writer = writer or make_writer(directory)
    if drops_only:
        writer.store.put(report.metadata_name, dumps(report.metadata({})))
    else:
        writer.write(report, session)
    return report
