"""Retention (``catalog/retention.py``, applied by ``Catalog.prune``): the oldest reports first,
each record before its files, and the files a worker left without a record."""

from __future__ import annotations

import os
import time
from pathlib import Path

from synthetic import T0, write_report

from gunicorn_pyinstrument.catalog import Catalog
from gunicorn_pyinstrument.catalog.retention import ORPHAN_SECONDS
from gunicorn_pyinstrument.directory import FORMAT_SUFFIXES, JOB_SUFFIX, METADATA_SUFFIX, SPOOL_DIR
from gunicorn_pyinstrument.report import Report

from .helpers import catalog_names, files_of, names, report_files


def _five(directory: Path, formats=("session",)) -> list[Report]:
    return [write_report(directory, start=T0 + i, path=f"/r/{i}", formats=formats) for i in range(5)]


def test_prune_by_count_removes_the_oldest_record_first(tmp_path, monkeypatch):
    reports = _five(tmp_path)
    # Written in another order than their start times: age is the start time, not the file time.
    reports.insert(0, write_report(tmp_path, start=T0 - 100, path="/oldest"))
    unlinked: list[str] = []
    real_unlink = os.unlink

    def recording_unlink(path, *args, **kwargs):
        unlinked.append(os.path.basename(path))
        return real_unlink(path, *args, **kwargs)

    with Catalog(str(tmp_path)) as cat:
        monkeypatch.setattr(os, "unlink", recording_unlink)
        removed, orphans = cat.prune(max_reports=4, max_bytes=None)
        monkeypatch.undo()
        assert names(removed) == [reports[0].name, reports[1].name]
        assert orphans == []
        assert names(cat.entries()) == [r.name for r in reports[2:]]
        assert cat.totals()[0] == 4
        # Each report went record first, then its files.
        for report in reports[:2]:
            mine = [n for n in unlinked if n.startswith(report.name)]
            assert mine == [report.name + METADATA_SUFFIX, report.name + FORMAT_SUFFIXES["session"]]
        for report in reports[:2]:
            assert not any(tmp_path.glob(report.name + "*"))
        for report in reports[2:]:
            assert all(p.exists() for p in files_of(tmp_path, report))
        # Nothing more to do: the limit holds.
        assert cat.prune(max_reports=4, max_bytes=None) == ([], [])
    assert catalog_names(tmp_path) == [r.name for r in reports[2:]]


def test_prune_by_bytes_removes_the_oldest_until_under_the_limit(tmp_path):
    reports = _five(tmp_path, formats=("session", "html"))
    from gunicorn_pyinstrument.helper.rendering import drain

    assert drain(str(tmp_path)) == 5  # the html of each, as the renderer does
    with Catalog(str(tmp_path)) as cat:
        sizes = {e.name: e.bytes for e in cat.entries()}
        assert all(len(e.files) == 2 for e in cat.entries())
        newest_three = sum(sizes[r.name] for r in reports[2:])
        removed, _ = cat.prune(max_reports=None, max_bytes=newest_three)
        assert names(removed) == [r.name for r in reports[:2]]
        assert cat.totals() == (3, newest_three)
        # One byte under what is left: the oldest one more goes.
        removed, _ = cat.prune(max_reports=None, max_bytes=newest_three - 1)
        assert names(removed) == [reports[2].name]
        # Both limits: whichever needs more removed.
        removed, _ = cat.prune(max_reports=1, max_bytes=10**9)
        assert names(removed) == [reports[3].name]
    left = report_files(tmp_path)
    assert left == sorted(p.name for p in files_of(tmp_path, reports[4]))


def test_prune_dry_run_removes_nothing(tmp_path):
    reports = _five(tmp_path)
    orphan = tmp_path / (reports[0].name.replace("_r_0_", "_orphan_") + FORMAT_SUFFIXES["html"])
    orphan.write_text("<html>")
    old = time.time() - ORPHAN_SECONDS - 60
    os.utime(orphan, (old, old))
    before = report_files(tmp_path)
    with Catalog(str(tmp_path)) as cat:
        removed, orphans = cat.prune(max_reports=2, max_bytes=None, dry_run=True)
        assert names(removed) == [r.name for r in reports[:3]]
        assert orphans == [orphan.name]
        assert cat.totals()[0] == 5
    assert report_files(tmp_path) == before
    with Catalog(str(tmp_path)) as cat:
        removed, orphans = cat.prune(max_reports=2, max_bytes=None)
        assert names(removed) == [r.name for r in reports[:3]]
        assert orphans == [orphan.name]
    assert not orphan.exists()


def test_prune_removes_old_orphans_only(tmp_path):
    kept = write_report(tmp_path, start=T0)
    # A worker killed between its session and its record: a session with no record, no job.
    lost_old = write_report(tmp_path, start=T0 + 1, formats=("session",))
    lost_young = write_report(tmp_path, start=T0 + 2, formats=("session",))
    for report in (lost_old, lost_young):
        (tmp_path / report.metadata_name).unlink()
    # A report still waiting for the renderer: its session is here, its job in the spool.
    waiting = write_report(tmp_path, start=T0 + 3, formats=("session", "html"))
    assert (tmp_path / SPOOL_DIR / (waiting.name + JOB_SUFFIX)).exists()
    assert not (tmp_path / waiting.metadata_name).exists()
    # Files that are not a worker's: never removed, however old.
    foreign = [tmp_path / "notes.txt", tmp_path / "merged_20251124T000000Z.html", tmp_path / "x.pyisession"]
    for path in foreign:
        path.write_text("mine")
    old = time.time() - ORPHAN_SECONDS - 1
    for path in [tmp_path / lost_old.filename("session"), tmp_path / waiting.filename("session"), *foreign]:
        os.utime(path, (old, old))
    young = time.time() - ORPHAN_SECONDS + 60
    os.utime(tmp_path / lost_young.filename("session"), (young, young))

    with Catalog(str(tmp_path)) as cat:
        removed, orphans = cat.prune(max_reports=10, max_bytes=None)
        assert removed == []
        assert orphans == [lost_old.filename("session")]
        assert names(cat.entries()) == [kept.name]
    assert not (tmp_path / lost_old.filename("session")).exists()
    assert (tmp_path / lost_young.filename("session")).exists()
    assert (tmp_path / waiting.filename("session")).exists()
    assert all(path.exists() for path in foreign)
    assert all(p.exists() for p in files_of(tmp_path, kept))


def test_prune_sees_reports_written_since_it_was_opened(tmp_path):
    with Catalog(str(tmp_path)) as cat:
        reports = _five(tmp_path)
        removed, _ = cat.prune(max_reports=3, max_bytes=None)
        assert names(removed) == [r.name for r in reports[:2]]
