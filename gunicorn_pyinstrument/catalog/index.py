"""The catalog of one directory: an index of its reports, built from their metadata records.

A report is complete when its metadata record ``NAME.meta.json`` exists (it is written last), so
the catalog is built from those records alone. The index is a SQLite database in
``DIR/.catalog/`` (the standard library's sqlite3: several processes reading and updating one
file at once is its job, not ours). It is only a cache of the files:

- every process that reads the catalog (the CLI, the web page, the master's helper process that
  enforces retention) first brings it up to date: records that appeared are read, records that
  vanished are dropped; the directory scan is skipped when the directory has not changed since;
- a lost, corrupt or outdated index is rebuilt from the files, and when the directory cannot be
  written (a read-only mount, another user) the index is built in memory (``database.py``);
- workers never touch it: they only write files, so a worker killed mid-write cannot corrupt it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..directory import METADATA_SUFFIX
from ..stores.local import check_name
from .database import connect
from .drops import Drops, count_drops
from .endpoints import request_endpoint
from .entry import COLUMNS, Entry
from .query import ORDERS, Query
from .retention import find_orphans, over_limits, remove
from .source import Source, attached_source

if TYPE_CHECKING:
    from pyinstrument.session import Session

#: A directory whose modification time is this recent is scanned even if the time matches the
#: index's: a change in the same clock tick as the last scan would otherwise go unseen.
MTIME_GRACE_SECONDS = 2.0

_SELECT = "SELECT " + ", ".join(f'"{c}"' for c in COLUMNS) + " FROM reports"


class CatalogError(Exception):
    """The directory cannot be read as a report directory; the message is one line."""


class Catalog:
    """The reports of one directory. Open it, query it, close it (or use ``with``)."""

    def __init__(self, directory: str, *, index: bool = True, source: Source | None = None) -> None:
        self.directory = os.path.abspath(directory)
        self.source = source if source is not None else attached_source(self.directory)
        if not os.path.isdir(self.directory):
            what = "does not exist" if not os.path.exists(self.directory) else "is not a directory"
            raise CatalogError(f"report directory {self.directory} {what}")
        self._db = connect(self.directory, index)
        #: Metadata records that could not be read, by name: skipped, and named to the user.
        self.unreadable: dict[str, str] = {}
        self.refresh()

    # --- the index ---

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _state(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def refresh(self, force: bool = False) -> int:
        """Bring the index up to date with the directory; returns how many records were added."""
        try:
            mtime = os.stat(self.directory).st_mtime_ns
        except OSError as exc:
            raise CatalogError(f"cannot read report directory {self.directory}: {exc.strerror}") from None
        fresh = time.time() - mtime / 1e9 < MTIME_GRACE_SECONDS
        if not force and not fresh and self._state("mtime") == mtime:
            self._load_unreadable()
            return 0
        try:
            names = {
                e.name[: -len(METADATA_SUFFIX)]
                for e in os.scandir(self.directory)
                if e.name.endswith(METADATA_SUFFIX) and not e.name.startswith(".")
            }
        except OSError as exc:
            raise CatalogError(f"cannot read report directory {self.directory}: {exc.strerror}") from None
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            known = {row[0] for row in db.execute("SELECT name FROM reports")}
            known_bad = {row[0] for row in db.execute("SELECT name FROM unreadable")}
            gone = (known | known_bad) - names
            if gone:
                db.executemany("DELETE FROM reports WHERE name = ?", ((n,) for n in gone))
                db.executemany("DELETE FROM unreadable WHERE name = ?", ((n,) for n in gone))
            rows, bad = [], []
            for name in names - known - known_bad:
                try:
                    rows.append(self._row(self._read_entry(name)))
                except FileNotFoundError:
                    continue  # removed while we looked
                except Exception as exc:
                    bad.append((name, _reason(exc)))
            placeholders = ",".join("?" * (len(COLUMNS) + 1))
            db.executemany(f"INSERT OR REPLACE INTO reports VALUES ({placeholders})", rows)
            db.executemany("INSERT OR REPLACE INTO unreadable VALUES (?, ?)", bad)
            # A fresh time is not recorded: a change later in the same clock tick would leave the
            # directory with this very time, and be skipped for good once the grace has passed.
            db.execute("INSERT OR REPLACE INTO state VALUES ('mtime', ?)", (None if fresh else mtime,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._load_unreadable()
        return len(rows)

    def _load_unreadable(self) -> None:
        self.unreadable = dict(self._db.execute("SELECT name, reason FROM unreadable ORDER BY name"))

    def _read_entry(self, name: str) -> Entry:
        meta_path = os.path.join(self.directory, name + METADATA_SUFFIX)
        with open(meta_path, "rb") as f:
            record = json.loads(f.read())
        if not isinstance(record, dict) or record.get("name") != name:
            raise ValueError("not a metadata record of this report")
        size = os.stat(meta_path).st_size
        for filename in (record.get("files") or {}).values():
            check_name(filename)
            remote = self.source.size(filename) if self.source is not None else None
            if remote is not None:
                size += remote
                continue
            with contextlib.suppress(OSError):
                size += os.stat(os.path.join(self.directory, filename)).st_size
        return Entry.from_record(record, size)

    @staticmethod
    def _row(entry: Entry) -> tuple[Any, ...]:
        values = entry.to_json()
        text = json.dumps(values)
        values["files"] = json.dumps(entry.files, sort_keys=True)
        return (*(values[c] for c in COLUMNS), text)

    @staticmethod
    def _entry(row: tuple[Any, ...]) -> Entry:
        values = dict(zip(COLUMNS, row, strict=True))
        values["files"] = json.loads(values["files"])
        if values["over_budget"] is not None:  # stored as 0 or 1
            values["over_budget"] = bool(values["over_budget"])
        return Entry(**values)

    # --- queries ---

    def entries(
        self,
        query: Query | None = None,
        order: str = "time",
        descending: bool = False,
        limit: int | None = None,
    ) -> list[Entry]:
        query = query or Query()
        where, params = query.sql()
        column = ORDERS[order]
        direction = "DESC" if descending else "ASC"
        sql = f'{_SELECT}{where} ORDER BY "{column}" {direction}, name {direction}'
        rows = self._db.execute(sql, params)
        matching: Iterator[Entry] = map(self._entry, rows)
        if query.filters_entries():
            matching = (e for e in matching if query.matches(e))
        if limit is None:
            return list(matching)
        result: list[Entry] = []
        for entry in matching:
            if len(result) >= limit:
                break
            result.append(entry)
        return result

    def json_records(
        self,
        query: Query | None = None,
        order: str = "time",
        descending: bool = False,
        limit: int | None = None,
    ) -> list[str]:
        """The selected entries as JSON texts (``Entry.to_json``): stored in the index, so listing
        100,000 reports does not build and encode 100,000 entries."""
        query = query or Query()
        if query.filters_entries():
            return [json.dumps(e.to_json()) for e in self.entries(query, order, descending, limit)]
        where, params = query.sql()
        direction = "DESC" if descending else "ASC"
        sql = f'SELECT json FROM reports{where} ORDER BY "{ORDERS[order]}" {direction}, name {direction}'
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [row[0] for row in self._db.execute(sql, params)]

    def endpoint_durations(self, query: Query | None = None) -> list[tuple[str, float, float | None]]:
        """(endpoint, duration, sampler share) of each request report the query selects, for
        :func:`top_of`. When SQL answers the whole query, four columns are read instead of whole
        entries."""
        query = query or Query()
        if query.filters_entries():
            return [
                (e.endpoint, e.duration, e.sampler_share) for e in self.entries(query) if e.kind == "request"
            ]
        where, params = Query(**{**query.fields(), "kind": "request"}).sql()
        rows = self._db.execute(f"SELECT method, path, duration, sampler_share FROM reports{where}", params)
        return [(request_endpoint(method, path), duration, share) for method, path, duration, share in rows]

    def dropped(self, query: Query | None = None) -> Drops:
        """The reports the workers dropped, over the workers and time ``query`` selects (``drops.py``)."""
        return count_drops(self._db, query)

    def get(self, name: str) -> Entry | None:
        row = self._db.execute(f"{_SELECT} WHERE name = ?", (name,)).fetchone()
        return self._entry(row) if row else None

    def totals(self) -> tuple[int, int]:
        count, size = self._db.execute("SELECT count(*), coalesce(sum(bytes), 0) FROM reports").fetchone()
        return int(count), int(size)

    # --- files ---

    def file_path(self, entry: Entry, fmt: str) -> str | None:
        """The path of one of the report's files, or None if it has no such format. With a source
        attached, the file is fetched first if it is not here yet (OSError if it cannot be)."""
        filename = entry.files.get(fmt)
        if filename is None:
            return None
        path = os.path.join(self.directory, check_name(filename))
        if self.source is not None and not os.path.exists(path):
            self.source.fetch(filename)
        return path

    def load_session(self, entry: Entry) -> Session:
        from ..formats import load_session

        path = self.file_path(entry, "session")
        if path is None:
            raise ValueError("no session file (written without the session format)")
        with open(path, "rb") as f:
            return load_session(f.read())

    def sessions(
        self,
        entries: Iterable[Entry],
        on_error: Callable[[Entry, str], None],
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[Session]:
        """Load each entry's session; one that cannot be read is skipped and reported."""
        for done, entry in enumerate(entries, 1):
            try:
                yield self.load_session(entry)
            except Exception as exc:
                on_error(entry, _reason(exc))
            if progress is not None:
                progress(done)

    # --- retention (retention.py) ---

    def prune(
        self,
        max_reports: int | None,
        max_bytes: int | None,
        dry_run: bool = False,
        orphans: bool = True,
    ) -> tuple[list[Entry], list[str]]:
        """Remove the oldest reports until at most ``max_reports`` remain and their files hold at
        most ``max_bytes``; and (``orphans``) report files left without a metadata record for over
        an hour, which takes a walk of the whole directory. Returns the entries and the orphan
        files removed (or that would be, with ``dry_run``)."""
        self.refresh()
        count, size = self.totals()
        removed = over_limits(self._oldest_first(), count, size, max_reports, max_bytes)
        orphan_files: list[str] = []
        if orphans:
            known = {row[0] for row in self._db.execute("SELECT name FROM reports")}
            orphan_files = find_orphans(self.directory, known | set(self.unreadable))
        if dry_run:
            return removed, orphan_files
        remove(self.directory, removed, orphan_files)
        if removed:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM reports WHERE name = ?", ((e.name,) for e in removed))
            self._db.execute("COMMIT")
        return removed, orphan_files

    def _oldest_first(self) -> Iterator[Entry]:
        """Every entry, oldest first, read as they are asked for."""
        for row in self._db.execute(f"{_SELECT} ORDER BY start, name"):
            yield self._entry(row)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg})"
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]!r}"
    return str(exc) or type(exc).__name__
