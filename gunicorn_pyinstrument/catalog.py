"""The catalog: an index of every report in the output directory, the queries over it, retention.

A report is complete when its metadata record ``NAME.meta.json`` exists (it is written last), so
the catalog is built from those records alone. The index is a SQLite database in
``DIR/.catalog/`` (the standard library's sqlite3: several processes reading and updating one
file at once is its job, not ours). It is only a cache of the files:

- every process that reads the catalog (the CLI, the web page, the master's helper process that
  enforces retention) first brings it up to date: records that appeared are read, records that
  vanished are dropped; the directory scan is skipped when the directory has not changed since;
- a lost, corrupt or outdated index is rebuilt from the files, and when the directory cannot be
  written (a read-only mount, another user) the index is built in memory;
- workers never touch it: they only write files, so a worker killed mid-write cannot corrupt it.

Retention (``GUNICORN_PYINSTRUMENT_MAX_REPORTS`` / ``MAX_BYTES``) removes the oldest reports
first, the metadata record before the files, so a report never appears half-removed.

The directory may be a local copy of remote storage holding only the metadata records
(``mirror.py``): a :class:`Source` attached to it fetches a report's other files when they are
first opened, and tells their sizes; the catalog itself knows nothing of the storage.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .directory import INDEX_DIR, INDEX_FILE, METADATA_SUFFIX, REPORT_NAME, TEMP_PREFIX, report_name
from .stores.local import check_name

if TYPE_CHECKING:
    from pyinstrument.session import Session

#: Bumped when the table changes: an index of another version is rebuilt from the files.
INDEX_VERSION = 2
#: A directory whose modification time is this recent is scanned even if the time matches the
#: index's: a change in the same clock tick as the last scan would otherwise go unseen.
MTIME_GRACE_SECONDS = 2.0
#: Report files without a metadata record (a worker killed between the session and its record)
#: are removed by retention once this old and not waiting for the renderer.
ORPHAN_SECONDS = 3600.0

_COLUMNS = (
    "name",
    "kind",
    "start",
    "end",
    "method",
    "path",
    "status",
    "duration",
    "trigger",
    "outcome",
    "label",
    "hostname",
    "pid",
    "instance",
    "samples",
    "bytes",
    "files",
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS reports (
    name TEXT PRIMARY KEY, kind TEXT, start REAL, "end" REAL, method TEXT, path TEXT,
    status INTEGER, duration REAL, "trigger" TEXT, outcome TEXT, label TEXT, hostname TEXT,
    pid INTEGER, instance TEXT, samples INTEGER, bytes INTEGER, files TEXT,
    json TEXT -- the entry as `list --json` prints it, made once when indexed
);
CREATE INDEX IF NOT EXISTS reports_start ON reports (start);
CREATE TABLE IF NOT EXISTS unreadable (name TEXT PRIMARY KEY, reason TEXT);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value);
PRAGMA user_version = {INDEX_VERSION};
"""
_SELECT = "SELECT " + ", ".join(f'"{c}"' for c in _COLUMNS) + " FROM reports"


class CatalogError(Exception):
    """The directory cannot be read as a report directory; the message is one line."""


class Source(Protocol):
    """Where the files of a directory's reports come from when they are not there yet."""

    def fetch(self, filename: str) -> None:
        """Put ``filename`` into the directory; OSError (FileNotFoundError: no such file) if not."""

    def size(self, filename: str) -> int | None:
        """The file's size where it is stored, or None if unknown."""


_SOURCES: dict[str, Source] = {}


def attach_source(directory: str, source: Source | None) -> None:
    """Every Catalog of ``directory`` opened from now on (in this process) fetches through
    ``source``; None detaches it."""
    key = os.path.abspath(directory)
    if source is None:
        _SOURCES.pop(key, None)
    else:
        _SOURCES[key] = source


@dataclass(frozen=True)
class Entry:
    """One complete report, as its metadata record describes it."""

    name: str
    kind: str
    start: float
    end: float
    method: str | None
    path: str | None
    status: int | None
    duration: float
    trigger: str
    outcome: str
    label: str | None
    hostname: str
    pid: int
    instance: str
    samples: int
    bytes: int  # every file of the report, its metadata record included
    files: dict[str, str] = field(hash=False)

    @property
    def endpoint(self) -> str:
        """``METHOD /folded/path`` for requests, ``WORKER`` for per-worker windows."""
        if self.kind != "request":
            return "WORKER window"
        return request_endpoint(self.method, self.path)

    @property
    def worker(self) -> str:
        return f"{self.pid}-{self.instance}"

    def to_json(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in _COLUMNS} | {"endpoint": self.endpoint}

    @classmethod
    def from_record(cls, record: dict[str, Any], size: int) -> Entry:
        worker = record.get("worker") or {}
        files = record.get("files") or {}
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            raise ValueError("bad 'files'")
        start = float(record["start"])
        return cls(
            name=str(record["name"]),
            kind=str(record.get("kind") or "request"),
            start=start,
            end=float(record.get("end") or start + float(record["duration"])),
            method=_optional_str(record.get("method")),
            path=_optional_str(record.get("path")),
            status=int(record["status"]) if record.get("status") is not None else None,
            duration=float(record["duration"]),
            trigger=str(record.get("trigger") or ""),
            outcome=str(record.get("outcome") or "complete"),
            label=_optional_str(record.get("label")),
            hostname=str(record.get("hostname") or ""),
            pid=int(record.get("pid") or 0),
            instance=str(worker.get("instance") or ""),
            samples=int(record.get("samples") or 0),
            bytes=size,
            files=files,
        )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


# --- endpoints and statistics: pure functions ---

_FOLDS = (
    (re.compile(r"\d+"), "{n}"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "{uuid}"),
    (re.compile(r"(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{16,}"), "{hex}"),
)


def fold_path(path: str) -> str:
    """``/users/42/orders/7`` → ``/users/{n}/orders/{n}``: one endpoint, whatever the ids
    (numbers, UUIDs and long hexadecimal ids are folded)."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        for pattern, placeholder in _FOLDS:
            if pattern.fullmatch(part):
                parts[i] = placeholder
                break
    return "/".join(parts)


def request_endpoint(method: str | None, path: str | None) -> str:
    """A request's endpoint, as :func:`top` groups them: ``GET /users/{n}``."""
    return f"{method} {fold_path(path or '')}"


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (the value of an actual request)."""
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class EndpointStats:
    endpoint: str
    count: int
    p50: float
    p95: float
    max: float
    total: float

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "count": self.count,
            "p50": self.p50,
            "p95": self.p95,
            "max": self.max,
            "total": self.total,
        }


TOP_ORDERS = ("total", "count", "p50", "p95", "max")


def top(entries: Iterable[Entry], order: str = "total") -> list[EndpointStats]:
    """Per endpoint (method + folded path): count, p50, p95, max and total time in seconds."""
    return top_of(((e.endpoint, e.duration) for e in entries if e.kind == "request"), order)


def top_of(pairs: Iterable[tuple[str, float]], order: str = "total") -> list[EndpointStats]:
    """:func:`top` from (endpoint, duration) pairs (:meth:`Catalog.endpoint_durations`)."""
    durations: dict[str, list[float]] = {}
    for endpoint, duration in pairs:
        durations.setdefault(endpoint, []).append(duration)
    stats = []
    for endpoint, values in durations.items():
        values.sort()
        stats.append(
            EndpointStats(
                endpoint=endpoint,
                count=len(values),
                p50=percentile(values, 0.50),
                p95=percentile(values, 0.95),
                max=values[-1],
                total=math.fsum(values),
            )
        )
    stats.sort(key=lambda s: (-getattr(s, order), s.endpoint))
    return stats


# --- selections ---
# Parsers of the selection values as users type them (CLI options, the web page's form, one side
# of a diff); each raises ValueError with a short message.


def parse_seconds(text: str) -> float:
    """``0.25``, ``250ms``, ``1.5s``, ``2m``: seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (for example 0.25, 250ms, 2s)")
    factor = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[match.group(2) or "s"]
    return float(match.group(1)) * factor


def parse_time(text: str, now: float | None = None) -> float:
    """An ISO 8601 time (UTC unless it says otherwise) or an age: ``10m``, ``2h``, ``3d`` ago."""
    now = time.time() if now is None else now
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*", text)
    if match:
        factor = {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
        return now - float(match.group(1)) * factor
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (an ISO time like 2026-11-26T10:00, or an age like 10m, 2h, 1d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def parse_regex(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        raise ValueError(f"bad regular expression {text!r}: {exc}") from None


def status_range(text: str) -> tuple[int, int]:
    """``404`` → (404, 404); ``5xx`` → (500, 599)."""
    text = text.strip().lower()
    if re.fullmatch(r"[1-5]\d\d", text):
        return int(text), int(text)
    if re.fullmatch(r"[1-5]xx", text):
        return int(text[0]) * 100, int(text[0]) * 100 + 99
    raise ValueError(f"not a status code or class like 5xx: {text!r}")


def parse_status(text: str) -> str:
    status_range(text)
    return text.strip().lower()


def parse_kind(text: str) -> str:
    if text not in ("request", "worker"):
        raise ValueError(f"not a kind: {text!r} (request or worker)")
    return text


def parse_word(text: str) -> str:
    if not text:
        raise ValueError("empty value")
    return text


#: Every selection key, with the parser of its value as typed.
SELECTION_KEYS: dict[str, Callable[[str], Any]] = {
    "path": parse_regex,
    "method": parse_word,
    "status": parse_status,
    "min_duration": parse_seconds,
    "label": parse_word,
    "since": parse_time,
    "until": parse_time,
    "worker": parse_word,
    "kind": parse_kind,
    "endpoint": parse_word,
}


def strip_suffix(name: str) -> str:
    """A report name from a file name or path given by a user."""
    name = os.path.basename(name)
    return report_name(name) or name


@dataclass(frozen=True)
class Query:
    """Which reports: every field that is set must match."""

    path: re.Pattern[str] | None = None  # re.search on the (decoded) path
    method: str | None = None
    status: str | None = None  # "200", or a class: "5xx"
    min_duration: float | None = None  # seconds
    label: str | None = None
    since: float | None = None  # epoch seconds, on the start time
    until: float | None = None
    worker: str | None = None  # a pid, a worker instance, PID-INSTANCE, or a host name
    kind: str | None = None  # "request" or "worker"
    endpoint: str | None = None  # "GET /users/{n}", as top() names it
    names: tuple[str, ...] = ()

    def sql(self) -> tuple[str, list[Any]]:
        """The part of the query SQLite can answer; :meth:`matches` does the rest."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.method is not None:
            clauses.append("method = ?")
            params.append(self.method.upper())
        if self.min_duration is not None:
            clauses.append("duration >= ?")
            params.append(self.min_duration)
        if self.label is not None:
            clauses.append("label = ?")
            params.append(self.label)
        if self.since is not None:
            clauses.append("start >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("start <= ?")
            params.append(self.until)
        if self.kind is not None:
            clauses.append("kind = ?")
            params.append(self.kind)
        if self.status is not None:
            low, high = status_range(self.status)
            clauses.append("status BETWEEN ? AND ?")
            params += [low, high]
        if self.names:
            clauses.append(f"name IN ({','.join('?' * len(self.names))})")
            params += list(self.names)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def fields(self) -> dict[str, Any]:
        """The keys that are set."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, ())}

    @classmethod
    def parse(cls, values: dict[str, str], base: Query | None = None) -> Query:
        """A query from text values by key (a web form); empty values are ignored."""
        fields = base.fields() if base is not None else {}
        for key, text in values.items():
            if key not in SELECTION_KEYS:
                raise ValueError(
                    f"unknown selection key {key!r}: expected one of {', '.join(SELECTION_KEYS)}"
                )
            if text.strip():
                fields[key] = SELECTION_KEYS[key](text.strip())
        return cls(**fields)

    def narrowed(self, text: str) -> Query:
        """This query narrowed by ``key=value[,key=value...]`` (``label=v1,path=^/api``; keys as in
        SELECTION_KEYS, dashes or underscores), or by a report name when there is no ``=``."""
        if "=" not in text:
            return Query(**{**self.fields(), "names": (strip_suffix(text),)})
        keys = {k.replace("_", "-"): k for k in SELECTION_KEYS} | {k: k for k in SELECTION_KEYS}
        # A comma starts a new pair only before a known key, so a regex may hold commas.
        pattern = r",(?=(?:" + "|".join(map(re.escape, keys)) + r")=)"
        values: dict[str, str] = {}
        for part in re.split(pattern, text):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in keys:
                expected = ", ".join(k.replace("_", "-") for k in SELECTION_KEYS)
                raise ValueError(f"bad selection {text!r}: expected KEY=VALUE with KEY one of {expected}")
            values[keys[key.strip()]] = value
        return Query.parse(values, self)

    def filters_entries(self) -> bool:
        """Whether :meth:`matches` has anything to check beyond what :meth:`sql` selects."""
        return self.path is not None or self.endpoint is not None or self.worker is not None

    def matches(self, entry: Entry) -> bool:
        if self.path is not None and (entry.path is None or not self.path.search(entry.path)):
            return False
        if self.endpoint is not None and entry.endpoint != self.endpoint:
            return False
        who = (str(entry.pid), entry.instance, entry.worker, entry.hostname)
        return self.worker is None or self.worker in who


ORDERS = {
    "time": "start",
    "duration": "duration",
    "path": "path",
    "status": "status",
    "method": "method",
    "label": "label",
    "samples": "samples",
    "name": "name",
}


#: How every report name starts (``Report.make_name``): its UTC time stamp.
# --- the catalog ---


class Catalog:
    """The reports of one directory. Open it, query it, close it (or use ``with``)."""

    def __init__(self, directory: str, *, index: bool = True, source: Source | None = None) -> None:
        self.directory = os.path.abspath(directory)
        self.source = source if source is not None else _SOURCES.get(self.directory)
        if not os.path.isdir(self.directory):
            what = "does not exist" if not os.path.exists(self.directory) else "is not a directory"
            raise CatalogError(f"report directory {self.directory} {what}")
        self._db = self._open(index)
        #: Metadata records that could not be read, by name: skipped, and named to the user.
        self.unreadable: dict[str, str] = {}
        self.refresh()

    # --- the index ---

    def _open(self, index: bool) -> sqlite3.Connection:
        path = os.path.join(self.directory, INDEX_DIR, INDEX_FILE)
        if index:
            with contextlib.suppress(OSError, sqlite3.Error):
                return self._open_file(path)
        # No writable index here: build one in memory, from the files.
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.executescript(_SCHEMA)
        return db

    def _open_file(self, path: str) -> sqlite3.Connection:
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
            placeholders = ",".join("?" * (len(_COLUMNS) + 1))
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
        return (*(values[c] for c in _COLUMNS), text)

    @staticmethod
    def _entry(row: tuple[Any, ...]) -> Entry:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["files"] = json.loads(values["files"])
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

    def endpoint_durations(self, query: Query | None = None) -> list[tuple[str, float]]:
        """(endpoint, duration) of each request report the query selects, for :func:`top_of`. When
        SQL answers the whole query, three columns are read instead of whole entries."""
        query = query or Query()
        if query.filters_entries():
            return [(e.endpoint, e.duration) for e in self.entries(query) if e.kind == "request"]
        where, params = Query(**{**query.fields(), "kind": "request"}).sql()
        rows = self._db.execute(f"SELECT method, path, duration FROM reports{where}", params)
        return [(request_endpoint(method, path), duration) for method, path, duration in rows]

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
        from .formats import load_session

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

    # --- retention ---

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
        removed: list[Entry] = []
        if (max_reports is not None and count > max_reports) or (max_bytes is not None and size > max_bytes):
            for row in self._db.execute(f"{_SELECT} ORDER BY start, name"):
                if (max_reports is None or count <= max_reports) and (max_bytes is None or size <= max_bytes):
                    break
                entry = self._entry(row)
                removed.append(entry)
                count -= 1
                size -= entry.bytes
        orphan_files = self._orphans() if orphans else []
        if dry_run:
            return removed, orphan_files
        for entry in removed:
            self._remove(entry)
        for filename in orphan_files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.directory, filename))
        if removed:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM reports WHERE name = ?", ((e.name,) for e in removed))
            self._db.execute("COMMIT")
        return removed, orphan_files

    def _remove(self, entry: Entry) -> None:
        # The record first: from then on no reader lists the report.
        names = [entry.name + METADATA_SUFFIX, *entry.files.values()]
        for filename in names:
            with contextlib.suppress(FileNotFoundError, ValueError):
                os.unlink(os.path.join(self.directory, check_name(filename)))

    def _orphans(self) -> list[str]:
        from .directory import JOB_SUFFIX, SPOOL_DIR

        try:
            pending = {
                n[: -len(JOB_SUFFIX)]
                for n in os.listdir(os.path.join(self.directory, SPOOL_DIR))
                if n.endswith(JOB_SUFFIX)
            }
        except OSError:
            pending = set()
        known = {row[0] for row in self._db.execute("SELECT name FROM reports")}
        known |= set(self.unreadable)
        cutoff = time.time() - ORPHAN_SECONDS
        orphans = []
        with os.scandir(self.directory) as entries:
            for item in entries:
                if item.name.startswith((".", TEMP_PREFIX)) or not item.is_file(follow_symlinks=False):
                    continue
                name = report_name(item.name)
                if name is None or name in known or name in pending or item.name.endswith(METADATA_SUFFIX):
                    continue
                if not REPORT_NAME.match(name):
                    continue  # not written by a worker (a user's notes.txt, a merged_*.html): not ours
                with contextlib.suppress(OSError):
                    if item.stat(follow_symlinks=False).st_mtime < cutoff:
                        orphans.append(item.name)
        return sorted(orphans)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg})"
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]!r}"
    return str(exc) or type(exc).__name__
