"""The helper's rendering: the drain of the spool's jobs into every format, oldest first, a corrupt
job set aside, stopping, and retention run between jobs."""

from __future__ import annotations

import json
import os
import stat

import pytest
from real_profile import files_in, make_report, make_writer, profile_busy_marker, spool_files

from gunicorn_pyinstrument.directory import FAILED_SUFFIX, JOB_SUFFIX, SPOOL_DIR
from gunicorn_pyinstrument.helper import rendering
from gunicorn_pyinstrument.helper.rendering import drain, pending_jobs


@pytest.fixture(scope="module")
def session():
    return profile_busy_marker()


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
