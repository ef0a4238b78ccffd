"""Queries (``catalog/query.py``): every key filters as the records say, and the text forms of a
query (``key=value,...``, a web form) are parsed or refused with a clear message."""

from __future__ import annotations

import datetime
import re
import time

import pytest
from synthetic import T0

from gunicorn_pyinstrument.catalog import Catalog, fold_path
from gunicorn_pyinstrument.catalog.query import Query

from .helpers import names


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
