"""Formats, the writer and the renderer's drain, on a real pyinstrument session."""

from __future__ import annotations

import json
import os
import pstats
import stat
import threading
import time

import pytest
from pyinstrument import Profiler

from gunicorn_pyinstrument.directory import FAILED_SUFFIX, FORMAT_SUFFIXES, JOB_SUFFIX, SPOOL_DIR
from gunicorn_pyinstrument.formats import load_session, render
from gunicorn_pyinstrument.helper import rendering
from gunicorn_pyinstrument.helper.rendering import drain, pending_jobs
from gunicorn_pyinstrument.logs import ThrottledLog
from gunicorn_pyinstrument.report import Report, RequestFacts, WorkerIdentity
from gunicorn_pyinstrument.worker.writer import Writer


def busy_marker_function(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += sum(range(50))
    return n


@pytest.fixture(scope="module")
def session():
    profiler = Profiler(interval=0.0005)
    profiler.start()
    busy_marker_function(0.03)
    return profiler.stop()


class RecordingLogger:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def error(self, msg, exc_info=None):
        self.records.append(("error", msg))

    def warning(self, msg, exc_info=None):
        self.records.append(("warning", msg))

    def info(self, msg):
        self.records.append(("info", msg))


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


# --- formats ---


def test_session_round_trips(session):
    loaded = load_session(render(session, "session"))
    assert as_json(loaded) == as_json(session)
    assert loaded.sample_count == session.sample_count > 0


def test_speedscope_is_json_naming_the_function(session):
    doc = json.loads(render(session, "speedscope"))
    assert "speedscope" in doc["$schema"]
    assert "busy_marker_function" in {frame["name"] for frame in doc["shared"]["frames"]}


def test_pstats_loads_with_pstats(session, tmp_path):
    path = tmp_path / "r.pstats"
    path.write_bytes(render(session, "pstats"))
    stats = pstats.Stats(str(path))
    assert "busy_marker_function" in {func for (_, _, func) in stats.stats}  # type: ignore[attr-defined]


def test_html_and_text(session):
    assert b"<html" in render(session, "html").lower()
    text = render(session, "text").decode("utf-8")
    assert "busy_marker_function" in text
    assert "\x1b[" not in text  # no colour codes in a file


def test_unknown_format(session):
    with pytest.raises(ValueError, match="unknown format"):
        render(session, "pdf")


def test_every_declared_format_renders(session):
    for fmt in FORMAT_SUFFIXES:
        assert render(session, fmt)


# --- writer and renderer ---


def test_write_session_only_is_complete_at_once(tmp_path, session):
    report = make_report(("session",))
    make_writer(tmp_path).write(report, session)
    assert files_in(tmp_path) == {report.filename("session"), report.metadata_name}
    assert spool_files(tmp_path) == set()
    meta = json.loads((tmp_path / report.metadata_name).read_bytes())
    assert meta["files"] == {"session": report.filename("session")}
    assert meta["name"] == report.name and meta["label"] == "v1"
    assert as_json(load_session((tmp_path / report.filename("session")).read_bytes())) == as_json(session)


def test_write_then_drain_renders_the_other_formats(tmp_path, session):
    report = make_report(("session", "html", "text"))
    make_writer(tmp_path, 0o640).write(report, session)
    # The worker wrote the session and a job; no metadata yet (it marks a complete report).
    assert files_in(tmp_path) == {report.filename("session")}
    assert spool_files(tmp_path) == {report.name + JOB_SUFFIX}
    assert pending_jobs(str(tmp_path)) == [report.name + JOB_SUFFIX]

    assert drain(str(tmp_path)) == 1

    expected = {fmt: report.filename(fmt) for fmt in ("session", "html", "text")}
    assert files_in(tmp_path) == {*expected.values(), report.metadata_name}
    meta = json.loads((tmp_path / report.metadata_name).read_bytes())
    assert meta["files"] == expected
    assert spool_files(tmp_path) == set()
    assert pending_jobs(str(tmp_path)) == []
    assert "busy_marker_function" in (tmp_path / report.filename("text")).read_text(encoding="utf-8")
    for name in files_in(tmp_path):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o640, name


def test_without_session_format_no_session_file_remains(tmp_path, session):
    report = make_report(("html",))
    make_writer(tmp_path).write(report, session)
    assert files_in(tmp_path) == set()
    assert spool_files(tmp_path) == {report.filename("session"), report.name + JOB_SUFFIX}
    assert drain(str(tmp_path)) == 1
    assert files_in(tmp_path) == {report.filename("html"), report.metadata_name}
    assert spool_files(tmp_path) == set()
    meta = json.loads((tmp_path / report.metadata_name).read_bytes())
    assert meta["files"] == {"html": report.filename("html")}


@pytest.mark.parametrize("garbage", [b"{not json", b"[1, 2]", b'{"metadata": {}}', b"\xff\xfe"])
def test_corrupt_job_is_set_aside_and_drain_goes_on(tmp_path, session, capsys, garbage):
    good = make_report(("session", "text"), started_at=1_764_167_779.0)
    make_writer(tmp_path).write(good, session)
    spool = tmp_path / SPOOL_DIR
    bad_name = "19990101T000000.000000Z_GET_bad_1ms_1-aaaaaa-1" + JOB_SUFFIX  # sorts first
    (spool / bad_name).write_bytes(garbage)
    assert pending_jobs(str(tmp_path))[0] == bad_name

    assert drain(str(tmp_path)) == 1

    err = capsys.readouterr().err
    assert str(spool / bad_name) in err
    assert (spool / (bad_name + FAILED_SUFFIX)).read_bytes() == garbage
    assert not (spool / bad_name).exists()
    assert pending_jobs(str(tmp_path)) == []
    assert (tmp_path / good.metadata_name).exists() and (tmp_path / good.filename("text")).exists()
    # The set-aside job is not retried.
    assert drain(str(tmp_path)) == 0


def test_jobs_are_drained_oldest_first(tmp_path, session, monkeypatch):
    writer = make_writer(tmp_path)
    reports = [
        make_report(("text",), started_at=1_764_167_778.0 + dt, seq=i) for i, dt in enumerate([3, 1, 2])
    ]
    for report in reports:
        writer.write(report, session)
    done: list[str] = []
    real = rendering.process_job

    def recording(directory, job_name):
        done.append(job_name)
        return real(directory, job_name)

    monkeypatch.setattr(rendering, "process_job", recording)
    assert drain(str(tmp_path)) == 3
    assert done == [r.name + JOB_SUFFIX for r in sorted(reports, key=lambda r: r.facts.started_at)]


def test_drain_can_be_stopped(tmp_path, session):
    writer = make_writer(tmp_path)
    for i in range(3):
        writer.write(make_report(("text",), seq=i), session)
    assert drain(str(tmp_path), should_stop=lambda: True) == 0
    assert len(pending_jobs(str(tmp_path))) == 3


def test_drain_runs_retention_between_jobs(tmp_path, session):
    """Retention keeps up with a long backlog instead of waiting for it to be rendered."""
    writer = make_writer(tmp_path)
    for i in range(3):
        writer.write(make_report(("text",), seq=i), session)
    pending_seen: list[int] = []
    assert drain(str(tmp_path), between=lambda: pending_seen.append(len(pending_jobs(str(tmp_path))))) == 3
    assert pending_seen == [2, 1, 0]


def test_job_whose_session_is_gone_does_not_stay_pending(tmp_path, session):
    report = make_report(("session", "html"))
    make_writer(tmp_path).write(report, session)
    os.unlink(tmp_path / report.filename("session"))
    drain(str(tmp_path))
    assert pending_jobs(str(tmp_path)) == []


def test_writer_recreates_a_removed_directory(tmp_path, session):
    directory = tmp_path / "reports"
    directory.mkdir()
    writer = make_writer(directory)
    directory.rmdir()
    report = make_report(("session",))
    writer.write(report, session)
    assert files_in(directory) == {report.filename("session"), report.metadata_name}


def test_recreated_directory_keeps_the_group_readable_mode(tmp_path, session):
    directory = tmp_path / "reports"
    directory.mkdir()
    writer = make_writer(directory, 0o640)
    directory.rmdir()
    writer.write(make_report(("session",)), session)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o750


# --- the writer thread ---


def test_submit_never_blocks_and_counts_drops(tmp_path, session, monkeypatch):
    log = RecordingLogger()
    writer = Writer(str(tmp_path), 0o600, 1, ThrottledLog(log))
    started, release = threading.Event(), threading.Event()
    real_write = writer.write

    def slow_write(report, sess):
        started.set()
        assert release.wait(10)
        real_write(report, sess)

    monkeypatch.setattr(writer, "write", slow_write)
    first, second, third = (make_report(("session",), seq=i) for i in (1, 2, 3))
    assert writer.submit(first, session) is True
    assert started.wait(10)  # the thread holds the first one; the queue (size 1) is empty
    assert writer.submit(second, session) is True
    t0 = time.perf_counter()
    assert writer.submit(third, session) is False
    assert time.perf_counter() - t0 < 0.5
    assert writer.dropped == 1
    assert any(level == "warning" and "queue full" in msg for level, msg in log.records)
    release.set()
    assert writer.close(10) is True
    assert writer.written == 2 and writer.failed == 0
    assert files_in(tmp_path) == {
        name for r in (first, second) for name in (r.filename("session"), r.metadata_name)
    }


def test_write_failure_is_counted_and_logged(tmp_path, session, monkeypatch):
    log = RecordingLogger()
    writer = Writer(str(tmp_path), 0o600, 4, ThrottledLog(log))

    def failing_write(report, sess):
        raise OSError("disk on fire")

    monkeypatch.setattr(writer, "write", failing_write)
    assert writer.submit(make_report(("session",)), session)
    assert writer.close(10) is True
    assert writer.failed == 1 and writer.written == 0
    assert [level for level, _ in log.records] == ["error"]


def test_close_without_submit_is_immediate(tmp_path):
    assert make_writer(tmp_path).close(0) is True
