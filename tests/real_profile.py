"""One real pyinstrument profile, and reports of it written by the project's Writer: for the tests
of the formats, the writer and the helper's rendering."""

from __future__ import annotations

import json
import os
import time

from fakes import RecordingLogger
from pyinstrument import Profiler
from pyinstrument.session import Session

from gunicorn_pyinstrument.directory import SPOOL_DIR
from gunicorn_pyinstrument.logs import ThrottledLog
from gunicorn_pyinstrument.report import Report, RequestFacts, WorkerIdentity
from gunicorn_pyinstrument.worker.writer import Writer


def busy_marker_function(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += sum(range(50))
    return n


def profile_busy_marker() -> Session:
    """A real session, mostly in ``busy_marker_function``."""
    profiler = Profiler(interval=0.0005)
    profiler.start()
    busy_marker_function(0.03)
    return profiler.stop()


WORKER = WorkerIdentity(pid=321, age=1, worker_class="SyncWorker", hostname="web-1", instance="abcdef")


def make_report(formats: tuple[str, ...], started_at: float = 1_764_167_778.5, seq: int = 1) -> Report:
    facts = RequestFacts("GET", "/api/users", 200, started_at, 0.031, "sample")
    return Report(Report.make_name(facts, WORKER, seq), facts, WORKER, "v1", formats, 60, 0.0005)


def make_writer(directory, file_mode: int = 0o600) -> Writer:
    return Writer(str(directory), file_mode, 4, ThrottledLog(RecordingLogger()))


def as_json(sess) -> object:
    """A session's JSON form, normalized (tuples become lists)."""
    return json.loads(json.dumps(sess.to_json()))


def files_in(directory) -> set[str]:
    return {e.name for e in os.scandir(directory) if e.is_file()}


def spool_files(directory) -> set[str]:
    spool = os.path.join(directory, SPOOL_DIR)
    return files_in(spool) if os.path.isdir(spool) else set()
