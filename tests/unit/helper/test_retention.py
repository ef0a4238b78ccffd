"""The helper process's retention (``helper/retention.py``): the limits applied at most once a
period, orphans looked for once a sweep, and a lost directory survived."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from synthetic import T0, write_report

from gunicorn_pyinstrument.catalog import ORPHAN_SECONDS, Catalog
from gunicorn_pyinstrument.directory import INDEX_DIR
from gunicorn_pyinstrument.helper.process import Retention
from gunicorn_pyinstrument.helper.retention import ORPHAN_SWEEP_SECONDS, RETENTION_SECONDS, Pruner
from gunicorn_pyinstrument.report import Report


def catalog_names(directory: Path | str) -> list[str]:
    with Catalog(str(directory)) as cat:
        return [e.name for e in cat.entries()]


def _five(directory: Path, formats=("session",)) -> list[Report]:
    return [write_report(directory, start=T0 + i, path=f"/r/{i}", formats=formats) for i in range(5)]


def test_pruner_runs_at_most_once_a_period(tmp_path):
    reports = _five(tmp_path)
    prune = Pruner(str(tmp_path), Retention(max_reports=3))
    prune(now=100.0)
    assert catalog_names(tmp_path) == [r.name for r in reports[2:]]
    later = [write_report(tmp_path, start=T0 + 10 + i) for i in range(2)]
    prune(now=100.0 + RETENTION_SECONDS / 2)  # too soon: nothing done
    assert len(catalog_names(tmp_path)) == 5
    prune(now=100.0 + RETENTION_SECONDS)
    assert catalog_names(tmp_path) == [reports[4].name, *(r.name for r in later)]


def test_pruner_looks_for_orphans_only_every_sweep_period(tmp_path):
    """Looking for orphans walks the whole directory: the pruner does it once per sweep period,
    while it applies the limits every second."""
    write_report(tmp_path, start=T0)
    old = time.time() - ORPHAN_SECONDS - 1

    def orphan(start: float) -> Path:
        report = write_report(tmp_path, start=start)
        (tmp_path / report.metadata_name).unlink()
        path = tmp_path / report.filename("session")
        os.utime(path, (old, old))
        return path

    first = orphan(T0 + 1)
    prune = Pruner(str(tmp_path), Retention(max_reports=10))
    prune(now=1000.0)
    assert not first.exists()
    second = orphan(T0 + 2)
    prune(now=1000.0 + RETENTION_SECONDS)
    assert second.exists()  # not swept yet
    prune(now=1000.0 + ORPHAN_SWEEP_SECONDS)
    assert not second.exists()


def test_pruner_without_limits_does_nothing(tmp_path):
    reports = _five(tmp_path)
    assert not Retention()
    Pruner(str(tmp_path), Retention())(now=0.0)
    assert not (tmp_path / INDEX_DIR).exists()  # not even opened
    assert catalog_names(tmp_path) == [r.name for r in reports]


def test_pruner_survives_a_lost_directory(tmp_path, capsys):
    directory = tmp_path / "reports"
    _five(directory)
    prune = Pruner(str(directory), Retention(max_bytes=1))
    prune(now=0.0)
    assert catalog_names(directory) == []
    shutil.rmtree(directory)
    prune(now=10.0)  # says so, does not raise
    assert f"cannot apply retention in {directory}" in capsys.readouterr().err
    reports = _five(directory)
    prune(now=20.0)
    assert catalog_names(directory) == []
    assert not any(directory.glob(reports[0].name + "*"))
