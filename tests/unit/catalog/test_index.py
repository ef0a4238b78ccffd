"""The index of a directory (``catalog/index.py``): built from the metadata records, kept up to date
by every reader, records that cannot be read named, and entries listed in order.

Reports are written as a worker writes them: the project's Writer, a Report, a pyinstrument Session.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import time

import pytest
from synthetic import T0, write_report

from gunicorn_pyinstrument.catalog.index import MTIME_GRACE_SECONDS, Catalog, CatalogError
from gunicorn_pyinstrument.catalog.query import Query
from gunicorn_pyinstrument.directory import INDEX_DIR, INDEX_FILE, METADATA_SUFFIX

from .helpers import catalog_names, files_of, names, record_of


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
