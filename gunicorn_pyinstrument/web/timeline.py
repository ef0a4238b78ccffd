"""Latency over time: one point per report (its start and duration), and the 50th and 95th
percentiles of each slice of time, for the chart of ``/chart`` (``static/chart.js``).

Percentiles are computed here, on every report of a slice, so the lines do not depend on how many
points the browser draws; they are nearest-rank, as in ``top`` (the duration of an actual request).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..catalog import Entry, percentile
from .layout import report_link

#: About this many slices over the chart's span (fewer for few reports: about POINTS_PER_BUCKET
#: each, so a line is not drawn through single points), each with at least MIN_BUCKET_SECONDS.
BUCKETS = 60
POINTS_PER_BUCKET = 5
MIN_BUCKET_SECONDS = 1.0


def bucket_seconds(span: float, buckets: int = BUCKETS) -> float:
    """A round slice width giving about ``buckets`` slices over ``span`` seconds."""
    raw = max(span / buckets, MIN_BUCKET_SECONDS)
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400):
        if raw <= step:
            return float(step)
    return 86400.0 * math.ceil(raw / 86400)


def buckets(points: Sequence[tuple[float, float]], width: float) -> dict[str, list[float]]:
    """Per slice of ``width`` seconds (aligned on multiples of it): its middle, how many reports,
    p50 and p95 of their durations; ``points`` are (start, duration), in any order."""
    slices: dict[int, list[float]] = {}
    for start, duration in points:
        slices.setdefault(math.floor(start / width), []).append(duration)
    out: dict[str, list[float]] = {"t": [], "count": [], "p50": [], "p95": []}
    for index in sorted(slices):
        durations = sorted(slices[index])
        out["t"].append((index + 0.5) * width)
        out["count"].append(len(durations))
        out["p50"].append(percentile(durations, 0.50))
        out["p95"].append(percentile(durations, 0.95))
    return out


def chart_data(entries: Sequence[Entry], truncated: bool) -> dict[str, Any]:
    """The chart's JSON: the points as columns (oldest first), the labels and paths they index,
    the percentile lines. Times in epoch seconds, durations in seconds."""
    ordered = sorted(entries, key=lambda e: e.start)
    labels: dict[str, int] = {}
    paths: dict[str, int] = {}
    columns: dict[str, list[Any]] = {"t": [], "d": [], "status": [], "label": [], "path": [], "name": []}
    endpoints: dict[tuple[str | None, str | None], str] = {}  # folding a path is the slow part
    for e in ordered:
        endpoint = endpoints.get((e.method, e.path))
        if endpoint is None:
            endpoint = endpoints[(e.method, e.path)] = e.endpoint
        columns["t"].append(round(e.start, 6))
        columns["d"].append(round(e.duration, 6))
        columns["status"].append(e.status)
        columns["label"].append(labels.setdefault(e.label or "", len(labels)))
        columns["path"].append(paths.setdefault(endpoint, len(paths)))
        columns["name"].append(e.name)
    span = ordered[-1].start - ordered[0].start if ordered else 0.0
    width = bucket_seconds(span, max(1, min(BUCKETS, len(ordered) // POINTS_PER_BUCKET)))
    return {
        "count": len(ordered),
        "truncated": truncated,
        "points": columns,
        "labels": list(labels),
        "endpoints": list(paths),
        "link": report_link(""),
        "bucket_seconds": width,
        "buckets": buckets([(e.start, e.duration) for e in ordered], width),
    }
