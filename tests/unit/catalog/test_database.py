"""The index's SQLite file (``catalog/database.py``): rebuilt when lost, corrupt or of another
version, and kept in memory where it cannot be written."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from synthetic import T0, write_report

from gunicorn_pyinstrument.catalog import Catalog, top
from gunicorn_pyinstrument.catalog.database import INDEX_VERSION
from gunicorn_pyinstrument.directory import INDEX_DIR, INDEX_FILE, METADATA_SUFFIX

from .helpers import catalog_names, names


def test_a_deleted_index_is_rebuilt(tmp_path):
    reports = [write_report(tmp_path, start=T0 + i) for i in range(4)]
    expected = [r.name for r in reports]
    assert catalog_names(tmp_path) == expected
    shutil.rmtree(tmp_path / INDEX_DIR)
    assert catalog_names(tmp_path) == expected
    assert os.path.isfile(tmp_path / INDEX_DIR / INDEX_FILE)


@pytest.mark.parametrize(
    "garbage",
    [b"garbage" * 1000, b"", b"SQLite format 3\x00" + b"\xff" * 5000],
    ids=["text", "empty", "bad-pages"],
)
def test_a_corrupt_index_is_rebuilt(tmp_path, garbage):
    reports = [write_report(tmp_path, start=T0 + i) for i in range(3)]
    expected = [r.name for r in reports]
    assert catalog_names(tmp_path) == expected
    index = tmp_path / INDEX_DIR / INDEX_FILE
    index.write_bytes(garbage)
    assert catalog_names(tmp_path) == expected
    db = sqlite3.connect(index)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM reports").fetchone() == (3,)
    finally:
        db.close()


def test_an_index_of_another_version_is_rebuilt(tmp_path):
    reports = [write_report(tmp_path, start=T0 + i) for i in range(2)]
    expected = [r.name for r in reports]
    assert catalog_names(tmp_path) == expected
    index = tmp_path / INDEX_DIR / INDEX_FILE
    db = sqlite3.connect(index, isolation_level=None)
    # A stale row the files do not have, and a state that says "nothing changed".
    db.execute("UPDATE reports SET label = 'stale' WHERE name = ?", (expected[0],))
    db.execute(f"PRAGMA user_version = {INDEX_VERSION + 1}")
    db.close()
    with Catalog(str(tmp_path)) as cat:
        assert names(cat.entries()) == expected
        assert cat.get(expected[0]).label is None
    db = sqlite3.connect(index)
    try:
        assert db.execute("PRAGMA user_version").fetchone() == (INDEX_VERSION,)
    finally:
        db.close()


def _same_view(directory: Path, **kwargs) -> tuple:
    with Catalog(str(directory), **kwargs) as cat:
        return (
            [e.to_json() for e in cat.entries()],
            dict(cat.unreadable),
            cat.totals(),
            [s.to_json() for s in top(cat.entries())],
        )


def test_an_index_that_cannot_be_created_is_kept_in_memory(tmp_path):
    for i in range(3):
        write_report(tmp_path, start=T0 + i, path=f"/users/{i}")
    (tmp_path / ("20251124T000000.000000Z_bad" + METADATA_SUFFIX)).write_text("{")
    expected = _same_view(tmp_path, index=False)
    assert len(expected[0]) == 3 and len(expected[1]) == 1
    assert not (tmp_path / INDEX_DIR).exists()  # index=False writes nothing
    # .catalog is a file: no index can be made there, whoever runs this (root ignores modes).
    (tmp_path / INDEX_DIR).write_text("not a directory")
    assert _same_view(tmp_path) == expected
    assert (tmp_path / INDEX_DIR).read_text() == "not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_directory_gets_an_index_in_memory(tmp_path):
    directory = tmp_path / "reports"
    directory.mkdir()
    for i in range(3):
        write_report(directory, start=T0 + i)
    expected = _same_view(directory, index=False)
    directory.chmod(0o555)
    try:
        assert not os.access(directory, os.W_OK)
        assert _same_view(directory) == expected
        assert not (directory / INDEX_DIR).exists()
    finally:
        directory.chmod(0o700)
