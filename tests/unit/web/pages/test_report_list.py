"""The report list's controls (sorting and paging), its sampling columns and what was dropped. The
pages themselves are tested against real reports in tests/integration/test_web.py."""

from __future__ import annotations

import re

import pytest
from synthetic import T0, write_report

from gunicorn_pyinstrument.catalog import ORDERS, Catalog, Entry, Query
from gunicorn_pyinstrument.report import Dropped
from gunicorn_pyinstrument.web.pages.report_list import (
    DEFAULT_LIMIT,
    LIST_COLUMNS,
    MAX_LIMIT,
    ListControls,
    list_controls,
    list_page,
    list_table,
)


def test_list_controls() -> None:
    assert list_controls({}) == ListControls("time", True, DEFAULT_LIMIT, 0)
    assert list_controls({"sort": "path"}) == ListControls("path", False, DEFAULT_LIMIT, 0)
    assert list_controls({"sort": "duration", "order": "asc", "limit": "5", "offset": "10"}) == (
        ListControls("duration", False, 5, 10)
    )
    for bad in ({"sort": "start"}, {"order": "up"}, {"limit": "0"}, {"limit": "1e3"}, {"offset": "-1"}):
        with pytest.raises(ValueError):
            list_controls(bad)
    with pytest.raises(ValueError, match="limit"):
        list_controls({"limit": str(MAX_LIMIT + 1)})


def test_every_catalog_order_is_a_sortable_column() -> None:
    assert {order for _, _, order in LIST_COLUMNS if order} == set(ORDERS)


def entry(name: str, **sampling: object) -> Entry:
    fields: dict[str, object] = {
        "interval": 0.01,
        "rate": None,
        "sampler_cpu": None,
        "sampler_share": None,
        "over_budget": None,
    }
    fields.update(sampling)
    return Entry(
        name=name,
        kind="worker" if fields["over_budget"] is not None else "request",
        start=1_764_000_000.0,
        end=1_764_000_001.0,
        method=None,
        path=None,
        status=None,
        duration=1.0,
        trigger="worker",
        outcome="complete",
        label=None,
        hostname="web-1",
        pid=7,
        instance="abcdef",
        samples=90,
        bytes=100,
        files={},
        **fields,  # type: ignore[arg-type]
    )


def test_the_list_shows_the_rate_and_the_sampler_share() -> None:
    html = list_table(
        [
            entry("pyinstrument", rate=812.4),
            entry("sampler", rate=97.0, sampler_cpu=0.0042, sampler_share=0.0061),
            entry("window", rate=10.0, sampler_cpu=0.03, sampler_share=0.035, over_budget=True),
            entry("old"),
        ],
        {},
        ListControls(),
    )
    cells = dict(re.findall(r'<tr data-name="([^"]+)".*?<td class="num rate">([^<]*)</td>', html))
    assert cells == {"pyinstrument": "812", "sampler": "97", "window": "10", "old": ""}
    share_cell = r'<tr data-name="([^"]+)".*?<td class="num sampler[^"]*"[^>]*>([^<]*)</td>'
    shares = dict(re.findall(share_cell, html))
    assert shares == {"pyinstrument": "", "sampler": "0.61", "window": "3.50 ⚠ over budget", "old": ""}
    assert 'title="4.2 ms of the sampler&#x27;s CPU"' in html
    assert '<th class="num" data-sort="sampler"' in html


def test_the_list_shows_what_each_worker_dropped(tmp_path) -> None:
    web1 = dict(pid=100, instance="aaaaaa", hostname="web-1")
    web2 = dict(pid=200, instance="bbbbbb", hostname="web-2")
    write_report(tmp_path, start=T0, path="/a", **web1)
    kept = write_report(tmp_path, start=T0 + 10, path="/b", dropped=Dropped(2, 1), **web1)
    write_report(tmp_path, start=T0 + 20, dropped=Dropped(0, 4), drops_only=True, **web2)
    with Catalog(str(tmp_path)) as cat:
        html = list_page(cat, {}, Query()).body.decode()
        filtered = list_page(cat, {"worker": "web-2"}, Query()).body.decode()
        before = list_page(cat, {"until": "2025-11-24T16:00:05Z"}, Query()).body.decode()
    cells = dict(re.findall(r'<tr data-name="([^"]+)".*?<td class="num dropped"[^>]*>([^<]*)</td>', html))
    assert set(cells.values()) == {"", "3"} and cells[kept.name] == "3"  # the record of drops is no row
    assert 'title="2 with the writer&#x27;s queue full, 1 with the upload spool full">3<' in html
    assert "Dropped, never written: 2 (queue full), 5 (spool full), by 2 workers" in html
    workers = re.findall(
        r'<tr data-worker="([^"]+)"><td class="worker">[^<]*</td><td class="host">([^<]*)', html
    )
    assert workers == [("200-bbbbbb", "web-2"), ("100-aaaaaa", "web-1")]  # most first
    assert "0 (queue full), 4 (spool full), by 1 worker" in filtered and 'id="empty"' in filtered
    assert 'id="dropped">No report dropped' in before and "dropped-workers" not in before
