"""Statistics per endpoint (``top``): how many requests, their median, 95th percentile, slowest
and total time, and the median share of the worker's CPU that the sampler engine used during them."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .entry import Entry


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
    sampler_share: float | None = None  # median over the reports that record one

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "count": self.count,
            "p50": self.p50,
            "p95": self.p95,
            "max": self.max,
            "total": self.total,
            "sampler_share": self.sampler_share,
        }


TOP_ORDERS = ("total", "count", "p50", "p95", "max")


def top(entries: Iterable[Entry], order: str = "total") -> list[EndpointStats]:
    """Per endpoint (method + folded path): count, p50, p95, max and total time in seconds, and the
    sampler's median share."""
    return top_of(((e.endpoint, e.duration, e.sampler_share) for e in entries if e.kind == "request"), order)


def top_of(rows: Iterable[tuple[str, float, float | None]], order: str = "total") -> list[EndpointStats]:
    """:func:`top` from (endpoint, duration, sampler share) rows (:meth:`Catalog.endpoint_durations`)."""
    durations: dict[str, list[float]] = {}
    shares: dict[str, list[float]] = {}
    for endpoint, duration, share in rows:
        durations.setdefault(endpoint, []).append(duration)
        if share is not None:
            shares.setdefault(endpoint, []).append(share)
    stats = []
    for endpoint, values in durations.items():
        values.sort()
        own = sorted(shares.get(endpoint, ()))
        stats.append(
            EndpointStats(
                endpoint=endpoint,
                count=len(values),
                p50=percentile(values, 0.50),
                p95=percentile(values, 0.95),
                max=values[-1],
                total=math.fsum(values),
                sampler_share=percentile(own, 0.50) if own else None,
            )
        )
    stats.sort(key=lambda s: (-getattr(s, order), s.endpoint))
    return stats
