"""Dropped reports in the catalog: each record's counts indexed, the totals per worker and in all over
the workers and time a query selects, the records of drops counted but never listed as reports."""

from __future__ import annotations

import json
import re

import pytest
from synthetic import T0, write_report

from gunicorn_pyinstrument.catalog import Catalog, Entry, Query
from gunicorn_pyinstrument.report import Dropped

from .helpers import names, record_of

WEB1 = dict(pid=100, instance="aaaaaa", hostname="web-1")
WEB2 = dict(pid=200, instance="bbbbbb", hostname="web-2")


@pytest.fixture(scope="module")
def dropped_dir(tmp_path_factory):
    """Two workers: web-1 drops 3 then 2 (queue full), web-2 drops 4 (spool full) after its last report."""
    directory = tmp_path_factory.mktemp("dropped")
    written = {
        "plain": write_report(directory, start=T0, path="/a", **WEB1),
        "three": write_report(directory, start=T0 + 10, path="/b", dropped=Dropped(3, 0), label="v1", **WEB1),
        "two": write_report(directory, start=T0 + 20, path="/c", dropped=Dropped(2, 0), label="v2", **WEB1),
        "web2": write_report(directory, start=T0 + 30, path="/d", **WEB2),
        "exit": write_report(directory, start=T0 + 40, dropped=Dropped(0, 4), drops_only=True, **WEB2),
    }
    return directory, {k: r.name for k, r in written.items()}


def test_each_entry_has_its_counts_and_the_record_of_drops_is_not_a_report(dropped_dir):
    directory, written = dropped_dir
    with Catalog(str(directory)) as cat:
        entries = {e.name: e for e in cat.entries()}
        assert set(entries) == {written[k] for k in ("plain", "three", "two", "web2")}
        three = entries[written["three"]]
        assert (three.dropped_queue_full, three.dropped_spool_full) == (3, 0)
        assert (
            entries[written["plain"]].dropped_queue_full,
            entries[written["plain"]].dropped_spool_full,
        ) == (0, 0)
        [drops] = cat.entries(Query(kind="dropped"))
        assert (drops.name, drops.kind, drops.files, drops.endpoint) == (
            written["exit"],
            "dropped",
            {},
            "WORKER dropped",
        )
        assert (drops.dropped_queue_full, drops.dropped_spool_full) == (0, 4)
        records = [json.loads(text) for text in cat.json_records()]
        assert written["exit"] not in {r["name"] for r in records}
        assert {r["name"]: (r["dropped_queue_full"], r["dropped_spool_full"]) for r in records}[
            written["two"]
        ] == (2, 0)
        assert cat.endpoint_durations() and all(e != "WORKER dropped" for e, _, _ in cat.endpoint_durations())


def test_totals_per_worker_and_in_all(dropped_dir):
    directory, _ = dropped_dir
    with Catalog(str(directory)) as cat:
        drops = cat.dropped()
    assert (drops.queue_full, drops.spool_full, drops.total) == (5, 4, 9)
    assert [(w.worker, w.hostname, w.queue_full, w.spool_full) for w in drops.workers] == [
        ("100-aaaaaa", "web-1", 5, 0),
        ("200-bbbbbb", "web-2", 0, 4),
    ]
    assert drops.summary() == "5 (queue full), 4 (spool full), by 2 workers"
    assert drops.to_json()["workers"][1] == {
        "worker": "200-bbbbbb",
        "hostname": "web-2",
        "queue_full": 0,
        "spool_full": 4,
    }


@pytest.mark.parametrize(
    "query, expected",
    [
        (Query(since=T0 + 15), (2, 4)),
        (Query(until=T0 + 15), (3, 0)),
        (Query(worker="web-2"), (0, 4)),
        (Query(worker="100"), (5, 0)),
        (Query(label="v2"), (2, 0)),
        # What a request was does not select drops: a dropped report's request is not recorded.
        (Query(path=re.compile("^/a$"), method="POST", status="5xx", kind="worker"), (5, 4)),
        (Query(since=T0 + 50), (0, 0)),
    ],
)
def test_the_selection_of_workers_and_time_applies(dropped_dir, query, expected):
    directory, _ = dropped_dir
    with Catalog(str(directory)) as cat:
        drops = cat.dropped(query)
    assert (drops.queue_full, drops.spool_full) == expected
    assert bool(drops) == (expected != (0, 0))


def test_older_records_read_as_not_counted(tmp_path):
    report = write_report(tmp_path, start=T0)
    record = record_of(tmp_path, report.name)
    del record["dropped"]
    entry = Entry.from_record(record, 10)
    assert (entry.dropped_queue_full, entry.dropped_spool_full) == (None, None)
    with pytest.raises(ValueError, match="dropped"):
        Entry.from_record({**record, "dropped": 3}, 10)
    (tmp_path / report.metadata_name).write_text(json.dumps(record))
    with Catalog(str(tmp_path), index=False) as cat:
        assert names(cat.entries()) == [report.name] and not cat.dropped()
