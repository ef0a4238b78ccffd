"""The latency chart's data: one point per report, oldest first, and each slice's percentiles."""

from __future__ import annotations

import pytest

from gunicorn_pyinstrument.catalog import Entry
from gunicorn_pyinstrument.web.timeline import bucket_seconds, buckets, chart_data


@pytest.mark.parametrize(
    ("span", "width"), [(0.0, 1.0), (30.0, 1.0), (600.0, 10.0), (3600.0, 60.0), (7 * 86400.0, 21600.0)]
)
def test_slices_are_round_and_about_sixty(span: float, width: float) -> None:
    assert bucket_seconds(span) == width


def test_each_slice_has_its_nearest_rank_percentiles() -> None:
    # 20 reports in [0, 10) with 1..20 ms, 1 report in [10, 20) with 500 ms.
    points = [(i * 0.5, (i + 1) / 1000) for i in range(20)] + [(12.0, 0.5)]
    out = buckets(points, 10.0)
    assert out["t"] == [5.0, 15.0]
    assert out["count"] == [20, 1]
    assert out["p50"] == [0.010, 0.5]
    assert out["p95"] == [0.019, 0.5]


def entry(name: str, start: float, duration: float, status: int, label: str | None) -> Entry:
    return Entry(
        name=name, kind="request", start=start, end=start + duration, method="GET", path="/users/7",
        status=status, duration=duration, trigger="sample", outcome="complete", label=label,
        hostname="h", pid=1, instance="abcdef", samples=1, interval=0.001, rate=None, sampler_cpu=None,
        sampler_share=None, over_budget=None, bytes=0, files={},
    )  # fmt: skip


def test_points_are_columns_oldest_first() -> None:
    entries = [
        entry("b", 20.0, 0.2, 500, "v2"),
        entry("a", 10.0, 0.1, 200, "v1"),
        entry("c", 30.0, 0.3, 200, None),
    ]
    data = chart_data(entries, truncated=True)
    points = data["points"]
    assert points["name"] == ["a", "b", "c"]
    assert points["t"] == [10.0, 20.0, 30.0] and points["d"] == [0.1, 0.2, 0.3]
    assert points["status"] == [200, 500, 200]
    assert [data["labels"][i] for i in points["label"]] == ["v1", "v2", ""]
    assert data["endpoints"] == ["GET /users/{n}"]
    assert (data["count"], data["truncated"], data["link"]) == (3, True, "/report/")
    assert sum(data["buckets"]["count"]) == 3
