"""The writer: what a worker leaves in the report directory and its spool, the directory recreated
if removed, and the writer thread (a bounded queue, never blocking, drops and failures counted, the
drops carried by the next written report or recorded at exit)."""

from __future__ import annotations

import dataclasses
import json
import stat
import threading
import time

import pytest
from fakes import RecordingLogger
from real_profile import as_json, files_in, make_report, make_writer, profile_busy_marker, spool_files
from synthetic import T0, session_of, write_report

from gunicorn_pyinstrument.directory import FULL_MARK, REPORT_NAME
from gunicorn_pyinstrument.formats import load_session
from gunicorn_pyinstrument.logs import ThrottledLog
from gunicorn_pyinstrument.worker.writer import Writer


@pytest.fixture(scope="module")
def session():
    return profile_busy_marker()


# --- writing ---


def test_write_session_only_is_complete_at_once(tmp_path, session):
    report = make_report(("session",))
    make_writer(tmp_path).write(report, session)
    assert files_in(tmp_path) == {report.filename("session"), report.metadata_name}
    assert spool_files(tmp_path) == set()
    meta = json.loads((tmp_path / report.metadata_name).read_bytes())
    assert meta["files"] == {"session": report.filename("session")}
    assert meta["name"] == report.name and meta["label"] == "v1"
    assert as_json(load_session((tmp_path / report.filename("session")).read_bytes())) == as_json(session)


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


def gated(writer: Writer, monkeypatch) -> tuple[threading.Event, threading.Event]:
    """The writer thread waits at ``gate`` before each write; ``holding`` is set once it does."""
    holding, gate = threading.Event(), threading.Event()
    real_write = writer.write

    def gated_write(report, sess):
        holding.set()
        assert gate.wait(10)
        real_write(report, sess)

    monkeypatch.setattr(writer, "write", gated_write)
    return holding, gate


def test_submit_never_blocks_and_counts_drops(tmp_path, session, monkeypatch):
    log = RecordingLogger()
    writer = Writer(str(tmp_path), 0o600, 1, ThrottledLog(log))
    started, release = gated(writer, monkeypatch)
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


# --- the spool bound ---


def test_a_bounded_writer_drops_while_the_mark_is_there(tmp_path):
    records: list[str] = []

    class Log:
        def warning(self, message, exc_info=False):
            records.append(message)

    writer = Writer(str(tmp_path), 0o600, 4, ThrottledLog(Log()), bounded=True)
    (tmp_path / FULL_MARK).touch()
    report = write_report(tmp_path, writer=writer)
    writer.submit(report, session_of(T0, 0.1))
    assert writer.close(5)
    assert writer.spool_dropped == 1 and writer.written == 0
    assert "over GUNICORN_PYINSTRUMENT_SPOOL_MAX_BYTES" in records[0]
    # An unbounded writer (no upload configured) ignores a mark left behind.
    plain = Writer(str(tmp_path), 0o600, 4, ThrottledLog(Log()))
    plain.submit(report, session_of(T0, 0.1))
    assert plain.close(5) and plain.written == 1


# --- drops, counted and carried ---


def records_in(directory) -> list[dict]:
    return [json.loads(p.read_bytes()) for p in sorted(directory.glob("*.meta.json"))]


def test_the_next_written_report_carries_the_drops_before_it(tmp_path, session, monkeypatch):
    writer = Writer(str(tmp_path), 0o600, 1, ThrottledLog(RecordingLogger()))
    holding, gate = gated(writer, monkeypatch)
    first, second, third, fourth = (make_report(("session",), seq=i) for i in (1, 2, 3, 4))
    assert writer.submit(first, session) and holding.wait(10)  # the thread holds the first
    assert writer.submit(second, session)  # the queue (1) is full now
    assert not writer.submit(third, session) and not writer.submit(fourth, session)
    gate.set()
    assert writer.close(10)
    records = {r["name"]: r for r in records_in(tmp_path)}
    # The first was written after the two drops: it carries them; the second, none.
    assert records[first.name]["dropped"] == {"queue_full": 2, "spool_full": 0}
    assert records[second.name]["dropped"] == {"queue_full": 0, "spool_full": 0}
    assert set(records) == {first.name, second.name}  # nothing left over for a record of drops
    assert writer.dropped == 2


def test_drops_of_a_report_that_fails_go_to_the_next(tmp_path, session, monkeypatch):
    writer = Writer(str(tmp_path), 0o600, 1, ThrottledLog(RecordingLogger()))
    holding, gate = gated(writer, monkeypatch)
    unwritable = dataclasses.replace(make_report(("session",), seq=1), name="no/such/dir")
    kept = make_report(("session",), seq=2)
    assert writer.submit(unwritable, session) and holding.wait(10)
    assert writer.submit(kept, session)
    assert not writer.submit(make_report(("session",), seq=3), session)
    gate.set()
    assert writer.close(10)
    assert (writer.failed, writer.written) == (1, 1)
    [record] = records_in(tmp_path)
    assert record["name"] == kept.name and record["dropped"] == {"queue_full": 1, "spool_full": 0}


def test_drops_after_the_last_written_report_are_recorded_at_exit(tmp_path, session):
    writer = Writer(str(tmp_path), 0o600, 4, ThrottledLog(RecordingLogger()), bounded=True)
    (tmp_path / FULL_MARK).touch()
    before = time.time()
    for i in range(3):
        assert writer.submit(make_report(("session", "html"), seq=i), session)
    assert writer.close(10) and writer.spool_dropped == 3
    [record] = records_in(tmp_path)
    assert record["kind"] == "dropped" and record["files"] == {} and spool_files(tmp_path) == set()
    assert record["dropped"] == {"queue_full": 0, "spool_full": 3}
    assert (record["pid"], record["label"], record["worker"]["instance"]) == (321, "v1", "abcdef")
    assert before <= record["start"] <= record["end"] <= time.time()
    assert "_WORKER_dropped_" in record["name"] and REPORT_NAME.match(record["name"])
