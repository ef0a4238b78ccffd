"""The catalog's shared fixture: a directory of reports that differ in every query key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic import T0, write_report

from gunicorn_pyinstrument.catalog import Catalog


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
