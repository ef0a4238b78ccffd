"""The statistics of ``top`` (``catalog/stats.py``), checked against figures computed from the
records."""

from __future__ import annotations

import json
import random
import uuid

import pytest
from synthetic import T0, write_report

from gunicorn_pyinstrument.catalog import Catalog
from gunicorn_pyinstrument.catalog.stats import percentile, top


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
