"""The catalog: the index built from the metadata records (and rebuilt when lost, corrupt, outdated
or impossible to write), every selection key, endpoints and their statistics, and retention.

Reports are written as a worker writes them: the project's Writer, a Report, a pyinstrument Session.
"""

from __future__ import annotations

import datetime
import json
import math
import multiprocessing
import os
import random
import re
import shutil
import sqlite3
import time
import uuid
from pathlib import Path

import pytest
from synthetic import T0, write_report

from gunicorn_pyinstrument import catalog as catalog_module
from gunicorn_pyinstrument.catalog import (
    INDEX_VERSION,
    MTIME_GRACE_SECONDS,
    ORPHAN_SECONDS,
    Catalog,
    CatalogError,
    Query,
    fold_path,
    percentile,
    top,
)
from gunicorn_pyinstrument.directory import (
    FORMAT_SUFFIXES,
    INDEX_DIR,
    INDEX_FILE,
    JOB_SUFFIX,
    METADATA_SUFFIX,
    SPOOL_DIR,
)
from gunicorn_pyinstrument.helper.process import Retention
from gunicorn_pyinstrument.helper.retention import ORPHAN_SWEEP_SECONDS, RETENTION_SECONDS, Pruner
from gunicorn_pyinstrument.report import Report


def record_of(directory: Path, name: str) -> dict:
    return json.loads((directory / (name + METADATA_SUFFIX)).read_bytes())


def names(entries) -> list[str]:
    return [e.name for e in entries]


def catalog_names(directory: Path | str, **kwargs) -> list[str]:
    with Catalog(str(directory), **kwargs) as cat:
        return names(cat.entries())


def files_of(directory: Path, report: Report) -> list[Path]:
    record = record_of(directory, report.name)
    return [directory / (report.name + METADATA_SUFFIX), *(directory / f for f in record["files"].values())]


def report_files(directory: Path) -> list[str]:
    """The directory's files, the index and the spool left out."""
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


# --- the index ---


def test_index_is_built_from_the_metadata_records(tmp_path):
    reports = [
        write_report(tmp_path, start=T0 + 2, path="/b", label="v1"),
        write_report(tmp_path, start=T0, path="/a", status=None),
        write_report(tmp_path, start=T0 + 1, path="/c", window=True, duration=5.0),
    ]
    with Catalog(str(tmp_path)) as cat:
        entries = cat.entries()
        assert os.path.isfile(tmp_path / INDEX_DIR / INDEX_FILE)
        assert cat.unreadable == {}
        by_time = sorted(reports, key=lambda r: r.facts.started_at)
        assert names(entries) == [r.name for r in by_time]
        for entry in entries:
            record = record_of(tmp_path, entry.name)
            for key in ("kind", "start", "end", "method", "path", "status", "duration", "label"):
                assert getattr(entry, key) == record[key], key
            assert entry.trigger == record["trigger"]
            assert entry.outcome == record["outcome"]
            assert (entry.pid, entry.hostname, entry.instance) == (100, "web-1", "aaaaaa")
            assert entry.samples == record["samples"] == 1
            assert entry.files == record["files"]
            sizes = [
                os.path.getsize(p)
                for p in files_of(tmp_path, next(r for r in reports if r.name == entry.name))
            ]
            assert entry.bytes == sum(sizes)
            assert cat.get(entry.name) == entry
        assert cat.totals() == (3, sum(e.bytes for e in entries))
        assert cat.get("20990101T000000.000000Z_GET_x_1ms_1-a-1") is None
        window = next(e for e in entries if e.kind == "worker")
        assert (window.method, window.path, window.status) == (None, None, None)
        assert window.endpoint == "WORKER window"
        assert json.loads(json.dumps(window.to_json()))["endpoint"] == "WORKER window"


def test_a_missing_directory_is_a_catalog_error(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        Catalog(str(tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(CatalogError, match="is not a directory"):
        Catalog(str(tmp_path / "file"))


def test_refresh_picks_up_new_records_and_drops_vanished_ones(tmp_path):
    first = [write_report(tmp_path, start=T0 + i) for i in range(3)]
    with Catalog(str(tmp_path)) as cat, Catalog(str(tmp_path)) as other:
        assert names(cat.entries()) == [r.name for r in first]
        added = [write_report(tmp_path, start=T0 + 10 + i) for i in range(2)]
        assert cat.refresh() == 2
        assert names(cat.entries()) == [r.name for r in first + added]
        for path in files_of(tmp_path, first[1]):
            path.unlink()
        assert cat.refresh() == 0
        expected = [first[0].name, first[2].name, *(r.name for r in added)]
        assert names(cat.entries()) == expected
        # Another reader of the same index sees the same.
        other.refresh()
        assert names(other.entries()) == expected
    # And a new process opening the index later, too.
    assert catalog_names(tmp_path) == expected


def test_a_report_added_in_the_same_clock_tick_as_the_last_scan_is_seen(tmp_path):
    """File times have a clock-tick granularity: a record written just after a scan can leave the
    directory with the very modification time the scan saw. Once that time is old, the index must
    not take it for "nothing changed since"."""
    Catalog(str(tmp_path)).close()  # the index exists: opening it changes nothing in the directory
    first = write_report(tmp_path, start=T0)
    tick = time.time_ns() - int((MTIME_GRACE_SECONDS - 1.0) * 1e9)  # recent: within the grace
    os.utime(tmp_path, ns=(tick, tick))
    with Catalog(str(tmp_path)) as cat:
        assert names(cat.entries()) == [first.name]
        second = write_report(tmp_path, start=T0 + 1)
        os.utime(tmp_path, ns=(tick, tick))  # the same tick as the scan
        while time.time() - tick / 1e9 <= MTIME_GRACE_SECONDS + 0.05:
            time.sleep(0.05)  # until that time is older than the grace
        cat.refresh()
        assert names(cat.entries()) == [first.name, second.name]


def test_an_unchanged_old_directory_is_not_scanned_again(tmp_path):
    Catalog(str(tmp_path)).close()
    report = write_report(tmp_path, start=T0)
    old = time.time_ns() - int(60e9)
    os.utime(tmp_path, ns=(old, old))
    with Catalog(str(tmp_path)) as cat:
        assert names(cat.entries()) == [report.name]
        # A record that appears without changing the directory's time (a copy that kept it):
        # skipped until the directory changes, or a forced refresh.
        late = write_report(tmp_path, start=T0 + 1)
        os.utime(tmp_path, ns=(old, old))
        assert cat.refresh() == 0
        assert names(cat.entries()) == [report.name]
        assert cat.refresh(force=True) == 1
        assert names(cat.entries()) == [report.name, late.name]


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


def _refresh_until_done(directory: str, done, ready) -> tuple[list[str], list[str]]:
    """In a process of its own: refresh the shared index while reports are added; then the names
    it ends with, right after the last one, and once the directory's time is older than the grace."""
    with Catalog(directory) as cat:
        ready.put(os.getpid())
        while not done.is_set():
            cat.refresh()
            cat.entries()
        cat.refresh()
        right_after = names(cat.entries())
        while time.time() - os.stat(directory).st_mtime <= MTIME_GRACE_SECONDS:
            time.sleep(0.05)
        cat.refresh()
        later = names(cat.entries())
    with Catalog(directory) as fresh:
        return right_after, [*later, "--", *names(fresh.entries())]


def test_processes_refreshing_one_index_at_once_all_end_complete(tmp_path):
    context = multiprocessing.get_context("spawn")
    manager = context.Manager()
    try:
        done, ready = manager.Event(), manager.Queue()
        with context.Pool(3) as pool:
            results = [pool.apply_async(_refresh_until_done, (str(tmp_path), done, ready)) for _ in range(3)]
            assert len({ready.get(timeout=60) for _ in range(3)}) == 3  # all three running
            written = []
            for i in range(60):
                written.append(write_report(tmp_path, start=T0 + i, pid=100 + i % 3).name)
                if i % 7 == 0:
                    time.sleep(0.01)
            done.set()
            outcomes = [r.get(120) for r in results]
    finally:
        manager.shutdown()
    for right_after, later in outcomes:
        assert right_after == written
        assert later == [*written, "--", *written]


def test_a_corrupt_record_is_skipped_and_named(tmp_path):
    good = write_report(tmp_path, start=T0)
    broken = {
        "20251124T000001.000000Z_GET_notjson_1ms_1-a-1": b'{"name": ',
        "20251124T000002.000000Z_GET_nostart_1ms_1-a-2": None,
        "20251124T000003.000000Z_GET_othername_1ms_1-a-3": json.dumps({"name": "x", "start": 1}).encode(),
        "20251124T000004.000000Z_GET_list_1ms_1-a-4": b"[1, 2]",
        "20251124T000005.000000Z_GET_badfile_1ms_1-a-5": None,
    }
    record = record_of(tmp_path, good.name)
    for name in broken:
        if broken[name] is None:
            bad = dict(record, name=name)
            if "nostart" in name:
                del bad["start"]
            else:
                bad["files"] = {"session": "../../etc/passwd"}
            broken[name] = json.dumps(bad).encode()
        (tmp_path / (name + METADATA_SUFFIX)).write_bytes(broken[name])
    with Catalog(str(tmp_path)) as cat:
        assert names(cat.entries()) == [good.name]
        assert set(cat.unreadable) == set(broken)
        assert cat.unreadable["20251124T000001.000000Z_GET_notjson_1ms_1-a-1"].startswith("not valid JSON")
        assert cat.unreadable["20251124T000002.000000Z_GET_nostart_1ms_1-a-2"] == "missing 'start'"
        assert "not a metadata record" in cat.unreadable["20251124T000003.000000Z_GET_othername_1ms_1-a-3"]
        assert "unsafe file name" in cat.unreadable["20251124T000005.000000Z_GET_badfile_1ms_1-a-5"]
        # Still named by the next process (from the index), and forgotten once removed.
        with Catalog(str(tmp_path)) as other:
            assert other.unreadable == cat.unreadable
        for name in broken:
            (tmp_path / (name + METADATA_SUFFIX)).unlink()
        cat.refresh()
        assert cat.unreadable == {}
        assert names(cat.entries()) == [good.name]


# --- selections ---


@pytest.fixture(scope="module")
def varied(tmp_path_factory):
    """Reports differing in every selection key; their records, by name."""
    directory = tmp_path_factory.mktemp("varied")
    specs = [
        dict(method="GET", path="/api/users/1", status=200, duration=0.05, label="v1"),
        dict(method="POST", path="/api/users", status=201, duration=0.30, label="v1"),
        dict(
            method="GET",
            path="/api/orders/7",
            status=500,
            duration=0.80,
            label="v2",
            pid=200,
            instance="bbbbbb",
            hostname="web-2",
        ),
        dict(
            method="GET",
            path="/health",
            status=404,
            duration=0.01,
            pid=200,
            instance="bbbbbb",
            hostname="web-2",
        ),
        dict(window=True, duration=10.0, pid=300, instance="cccccc", label="v2"),
        dict(method="DELETE", path="/api/users/2", status=503, duration=0.2999, label="v2"),
        dict(method="GET", path="/api/users/22", status=None, duration=1.5, label="v1,x", pid=1000),
        dict(method="GET", path="/files/a,b.txt", status=200, duration=0.3, pid=10),
    ]
    for i, spec in enumerate(specs):
        write_report(directory, start=T0 + 10 * i, **spec)
    with Catalog(str(directory)) as cat:
        assert cat.unreadable == {}
    records = {r["name"]: r for r in map(json.loads, map(Path.read_bytes, directory.glob("*.meta.json")))}
    assert len(records) == len(specs)
    return directory, records


def _endpoint(record) -> str:
    return (
        "WORKER window" if record["kind"] == "worker" else f"{record['method']} {fold_path(record['path'])}"
    )


SELECTIONS = [
    (Query(path=re.compile("^/api/users")), lambda r: (r["path"] or "").startswith("/api/users")),
    (Query(path=re.compile(r"users/\d+$")), lambda r: re.search(r"users/\d+$", r["path"] or "")),
    (Query(path=re.compile("a,b")), lambda r: r["path"] == "/files/a,b.txt"),
    (Query(method="get"), lambda r: r["method"] == "GET"),
    (Query(method="DELETE"), lambda r: r["method"] == "DELETE"),
    (Query(status="500"), lambda r: r["status"] == 500),
    (Query(status="5xx"), lambda r: r["status"] is not None and 500 <= r["status"] <= 599),
    (Query(status="4xx"), lambda r: r["status"] == 404),
    (Query(status="2XX"), lambda r: r["status"] in (200, 201)),
    (Query(min_duration=0.3), lambda r: r["duration"] >= 0.3),
    (Query(label="v1"), lambda r: r["label"] == "v1"),
    (Query(label="v1,x"), lambda r: r["label"] == "v1,x"),
    (Query(since=T0 + 20), lambda r: r["start"] >= T0 + 20),
    (Query(until=T0 + 20), lambda r: r["start"] <= T0 + 20),
    (Query(since=T0 + 15, until=T0 + 45), lambda r: T0 + 15 <= r["start"] <= T0 + 45),
    (Query(worker="200"), lambda r: r["pid"] == 200),
    (Query(worker="10"), lambda r: r["pid"] == 10),  # not 100, nor 1000
    (Query(worker="bbbbbb"), lambda r: r["worker"]["instance"] == "bbbbbb"),
    (Query(worker="300-cccccc"), lambda r: r["pid"] == 300),
    (Query(worker="web-2"), lambda r: r["hostname"] == "web-2"),
    (Query(worker="web"), lambda r: False),
    (Query(kind="worker"), lambda r: r["kind"] == "worker"),
    (Query(kind="request"), lambda r: r["kind"] == "request"),
    (Query(endpoint="GET /api/users/{n}"), lambda r: _endpoint(r) == "GET /api/users/{n}"),
    (Query(endpoint="WORKER window"), lambda r: r["kind"] == "worker"),
    (Query(label="v2", status="5xx"), lambda r: r["label"] == "v2" and r["status"] in (500, 503)),
    (Query(label="v2", method="GET", min_duration=0.5), lambda r: r["path"] == "/api/orders/7"),
    (Query(), lambda r: True),
]


@pytest.mark.parametrize(("query", "expected"), SELECTIONS, ids=[repr(q.fields()) for q, _ in SELECTIONS])
def test_every_selection_key_filters(varied, query, expected):
    directory, records = varied
    wanted = sorted((r["start"], name) for name, r in records.items() if expected(r))
    with Catalog(str(directory)) as cat:
        found = names(cat.entries(query))
    assert found == [name for _, name in wanted]
    assert found or query.fields() == {"worker": "web"}  # every selection but one finds something


def test_selection_by_names(varied):
    directory, records = varied
    chosen = sorted(records)[1:3]
    with Catalog(str(directory)) as cat:
        assert names(cat.entries(Query(names=tuple(chosen)))) == chosen
        assert names(cat.entries(Query(names=("nothing",)))) == []
        assert names(cat.entries(Query(names=tuple(chosen), status="2xx"))) == [
            n for n in chosen if records[n]["status"] in (200, 201)
        ]


def test_order_and_limit(varied):
    directory, records = varied
    with Catalog(str(directory)) as cat:
        by_duration = names(cat.entries(order="duration", descending=True))
        assert by_duration == sorted(records, key=lambda n: (records[n]["duration"], n), reverse=True)
        assert names(cat.entries(order="duration", descending=True, limit=3)) == by_duration[:3]
        newest_get = names(cat.entries(Query(method="GET"), descending=True, limit=2))
        gets = sorted((r["start"], n) for n, r in records.items() if r["method"] == "GET")
        assert newest_get == [n for _, n in reversed(gets)][:2]
        assert cat.entries(limit=0) == []


def test_json_records_are_the_entries_as_json(varied):
    directory, records = varied
    with Catalog(str(directory)) as cat:
        for query in (Query(), Query(method="GET"), Query(path=re.compile("users")), Query(worker="web")):
            for order, descending, limit in (("time", True, None), ("duration", False, 3)):
                entries = cat.entries(query, order, descending, limit)
                texts = cat.json_records(query, order, descending, limit)
                assert [json.loads(t) for t in texts] == [e.to_json() for e in entries]
        assert len(cat.json_records()) == len(records)


# --- endpoints and statistics ---


@pytest.mark.parametrize(
    ("path", "folded"),
    [
        ("/users/42/orders/7", "/users/{n}/orders/{n}"),
        ("/", "/"),
        ("", ""),
        ("/v2/items", "/v2/items"),  # a number inside a word is part of the name
        ("/items/123e4567-e89b-12d3-a456-426614174000", "/items/{uuid}"),
        ("/items/123E4567-E89B-12D3-A456-426614174000/x", "/items/{uuid}/x"),
        ("/blobs/0123456789abcdef0123", "/blobs/{hex}"),
        ("/blobs/deadbeefdeadbeef", "/blobs/deadbeefdeadbeef"),  # letters only: a word
        ("/blobs/0123456789abcde", "/blobs/0123456789abcde"),  # 15 digits of hex: too short
        ("/commits/3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39", "/commits/{hex}"),
        ("/a/1/b/123e4567-e89b-12d3-a456-426614174000/c/abcdef0123456789/d", "/a/{n}/b/{uuid}/c/{hex}/d"),
        ("/users/42/", "/users/{n}/"),
        ("/users/-42", "/users/-42"),
        ("/page/1.5", "/page/1.5"),
    ],
)
def test_fold_path(path, folded):
    assert fold_path(path) == folded


def test_percentile_is_nearest_rank():
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 0.50) == 10
    assert percentile(values, 0.95) == 19
    assert percentile(values, 0.96) == 20
    assert percentile(values, 1.0) == 20
    assert percentile(values, 0.0) == 1
    assert percentile([7.0], 0.5) == percentile([7.0], 0.95) == 7
    assert percentile([1.0, 2.0], 0.5) == 1
    assert percentile([1.0, 2.0, 3.0], 0.5) == 2
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_top_matches_figures_computed_from_the_records(tmp_path):
    rng = random.Random(7)

    def number() -> int:
        return rng.randrange(1, 10 ** rng.randrange(1, 6))

    for i in range(120):
        path = rng.choice(
            [
                f"/users/{number()}",
                f"/users/{number()}/orders/{number()}",
                "/health",
                f"/items/{uuid.UUID(int=rng.getrandbits(128))}",
            ]
        )
        write_report(
            tmp_path,
            method=rng.choice(["GET", "GET", "POST"]),
            path=path,
            start=T0 + i,
            duration=round(rng.uniform(0.001, 2.0), 6),
        )
    write_report(tmp_path, window=True, start=T0 + 500, duration=60.0)  # not a request: left out
    records = [json.loads(p.read_bytes()) for p in tmp_path.glob("*.meta.json")]

    def folded(path: str) -> str:
        parts = []
        for part in path.split("/"):
            if part.isdigit():
                part = "{n}"
            elif len(part) == 36 and part.count("-") == 4:
                part = "{uuid}"
            parts.append(part)
        return "/".join(parts)

    groups: dict[str, list[float]] = {}
    for r in records:
        if r["kind"] == "request":
            groups.setdefault(f"{r['method']} {folded(r['path'])}", []).append(r["duration"])
    assert len(groups) == 8 and sum(map(len, groups.values())) == 120

    with Catalog(str(tmp_path)) as cat:
        stats = top(cat.entries())
        by_count = top(cat.entries(), "count")
        by_max = top(cat.entries(), "max")
    assert {s.endpoint for s in stats} == set(groups)
    for s in stats:
        values = sorted(groups[s.endpoint])
        n = len(values)
        assert s.count == n
        assert s.p50 == values[(n + 1) // 2 - 1]  # nearest rank: the ceil(n/2)-th smallest
        assert s.p95 == values[-(-95 * n // 100) - 1]
        assert s.max == max(values)
        assert s.total == pytest.approx(sum(values))
    assert [s.total for s in stats] == sorted((s.total for s in stats), reverse=True)
    assert [s.count for s in by_count] == sorted((len(v) for v in groups.values()), reverse=True)
    assert [s.max for s in by_max] == sorted((max(v) for v in groups.values()), reverse=True)
    assert json.loads(json.dumps([s.to_json() for s in stats]))[0]["endpoint"] == stats[0].endpoint


# --- retention ---


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


# --- parsing selections ---


def test_narrowed_splits_pairs_but_not_a_regex_comma():
    query = Query().narrowed("path=^/a{1,3}/(x|y),z$,label=v1,min-duration=250ms")
    assert query.path is not None and query.path.pattern == "^/a{1,3}/(x|y),z$"
    assert query.label == "v1"
    assert query.min_duration == pytest.approx(0.25)
    assert Query().narrowed("min_duration=2s,status=5XX").fields() == {"min_duration": 2.0, "status": "5xx"}
    # A comma before something that is not a key stays in the value.
    assert Query().narrowed("label=a,b=c").label == "a,b=c"


def test_narrowed_keeps_the_base_and_overrides_its_keys():
    base = Query(method="GET", label="v0", kind="request")
    query = base.narrowed("label=v2,worker=web-1")
    assert query.fields() == {"method": "GET", "label": "v2", "kind": "request", "worker": "web-1"}
    assert base.label == "v0"  # unchanged


def test_narrowed_by_a_report_name_or_file():
    name = "20251124T000000.000000Z_GET_x_1ms_1-a-1"
    base = Query(label="v1")
    assert base.narrowed(name) == Query(label="v1", names=(name,))
    assert base.narrowed(f"/srv/reports/{name}.html").names == (name,)
    assert base.narrowed(f"{name}.meta.json").names == (name,)


def test_narrowed_times_are_parsed():
    query = Query().narrowed("since=2026-11-26T10:00,until=2026-11-26T10:00:30+01:00")
    ten = datetime.datetime(2026, 11, 26, 10, tzinfo=datetime.timezone.utc).timestamp()
    assert query.since == ten
    assert query.until == ten + 30 - 3600
    assert Query().narrowed("until=2026-11-26T10:00Z").until == ten
    age = Query().narrowed("since=10m").since
    assert age is not None and abs(time.time() - 600 - age) < 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour=red", "bad selection 'colour=red': expected KEY=VALUE with KEY one of path, method, status"),
        ("lable=v1", "bad selection 'lable=v1'"),
        ("=v1", "bad selection"),
        ("status=6xx", "not a status code or class like 5xx: '6xx'"),
        ("status=20", "not a status code"),
        ("min-duration=fast", "not a duration: 'fast'"),
        ("since=yesterday", "not a time: 'yesterday'"),
        ("path=(", "bad regular expression '('"),
        ("kind=thread", "not a kind: 'thread'"),
    ],
)
def test_narrowed_rejects_with_a_clear_message(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Query().narrowed(text)


def test_parse_form_values():
    query = Query.parse({"status": " 5xx ", "label": "", "path": "^/api", "min_duration": "0.5"})
    assert query.fields().keys() == {"status", "path", "min_duration"}
    assert query.status == "5xx" and query.min_duration == 0.5
    assert Query.parse({"label": "v2"}, Query(method="GET")).fields() == {"method": "GET", "label": "v2"}
    assert Query.parse({}) == Query()
    with pytest.raises(ValueError, match="unknown selection key 'names': expected one of path, method"):
        Query.parse({"names": "x"})
    with pytest.raises(ValueError, match="not a duration: '-1'"):
        Query.parse({"min_duration": "-1"})


def test_query_min_duration_zero_is_kept():
    assert Query(min_duration=0.0).fields() == {"min_duration": 0.0}


def test_endpoint_of_a_request_entry(tmp_path):
    write_report(tmp_path, method="PATCH", path="/users/12/avatar")
    with Catalog(str(tmp_path)) as cat:
        [entry] = cat.entries()
    assert entry.endpoint == "PATCH /users/{n}/avatar"
    assert entry.worker == "100-aaaaaa"
    assert math.isclose(entry.end, T0 + 0.1)
    assert catalog_module.strip_suffix(entry.name + ".speedscope.json") == entry.name
