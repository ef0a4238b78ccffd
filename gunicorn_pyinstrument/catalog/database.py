"""The index's SQLite database, ``DIR/.catalog/index.sqlite3``: its tables, and how it is opened.

It is only a cache of the metadata records, so an index that is corrupt or of another version is
started again, and where none can be written (a read-only mount, another user) one is made in
memory; the catalog then fills it from the files.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3

from ..directory import INDEX_DIR, INDEX_FILE

#: Bumped when the table changes: an index of another version is rebuilt from the files.
INDEX_VERSION = 4

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS reports (
    name TEXT PRIMARY KEY, kind TEXT, start REAL, "end" REAL, method TEXT, path TEXT,
    status INTEGER, duration REAL, "trigger" TEXT, outcome TEXT, label TEXT, hostname TEXT,
    pid INTEGER, instance TEXT, samples INTEGER, interval REAL, rate REAL, sampler_cpu REAL,
    sampler_share REAL, over_budget INTEGER, dropped_queue_full INTEGER, dropped_spool_full INTEGER,
    bytes INTEGER, files TEXT,
    json TEXT -- the entry as `list --json` prints it, made once when indexed
);
CREATE INDEX IF NOT EXISTS reports_start ON reports (start);
-- The few records that count drops, for the totals of dropped reports.
CREATE INDEX IF NOT EXISTS reports_dropped ON reports (start)
    WHERE dropped_queue_full > 0 OR dropped_spool_full > 0;
CREATE TABLE IF NOT EXISTS unreadable (name TEXT PRIMARY KEY, reason TEXT);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value);
PRAGMA user_version = {INDEX_VERSION};
"""


def connect(directory: str, index: bool = True) -> sqlite3.Connection:
    """The index of ``directory`` (in autocommit mode), or a new one in memory when ``index`` is
    false or the file cannot be used."""
    path = os.path.join(directory, INDEX_DIR, INDEX_FILE)
    if index:
        with contextlib.suppress(OSError, sqlite3.Error):
            return _connect_file(path)
    # No writable index here: build one in memory, from the files.
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(_SCHEMA)
    return db


def _connect_file(path: str) -> sqlite3.Connection:
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    for attempt in range(2):
        try:
            db = sqlite3.connect(path, timeout=30, isolation_level=None)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, INDEX_VERSION):
                raise sqlite3.DatabaseError(f"index version {version}")
            if version == 0:  # a new file: create the tables (a write, so only once)
                db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM reports").fetchone()
            if not os.access(path, os.W_OK):
                raise OSError("index not writable")
            return db
        except sqlite3.DatabaseError:
            # Corrupt or of another version: it is only a cache, so start it again.
            with contextlib.suppress(UnboundLocalError):
                db.close()
            if attempt:
                raise
            for suffix in ("", "-journal", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path + suffix)
    raise AssertionError("unreachable")
