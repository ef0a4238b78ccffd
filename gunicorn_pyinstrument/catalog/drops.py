"""Reports the workers dropped, never written: how many, in all and per worker, over the workers and
the time a query selects.

A worker drops a report when its writer's queue is full or the upload spool is over its bound, and
counts it: the next report it writes carries the count (its ``dropped``), and the drops after its last
one are written at exit as a record of kind ``dropped`` (``worker/writer.py``). A dropped report's
request is not recorded, so only the keys that say who and when (``DROP_KEYS``) select drops.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .query import Query


@dataclass(frozen=True)
class WorkerDrops:
    worker: str  # PID-INSTANCE, as Entry.worker
    hostname: str
    queue_full: int
    spool_full: int

    @property
    def total(self) -> int:
        return self.queue_full + self.spool_full

    def to_json(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "hostname": self.hostname,
            "queue_full": self.queue_full,
            "spool_full": self.spool_full,
        }


@dataclass(frozen=True)
class Drops:
    """The dropped reports of the selected workers and time, the workers that dropped most first."""

    workers: tuple[WorkerDrops, ...] = ()

    @property
    def queue_full(self) -> int:
        return sum(w.queue_full for w in self.workers)

    @property
    def spool_full(self) -> int:
        return sum(w.spool_full for w in self.workers)

    @property
    def total(self) -> int:
        return self.queue_full + self.spool_full

    def __bool__(self) -> bool:
        return bool(self.workers)

    def summary(self) -> str:
        """``12 (queue full), 0 (spool full), by 2 workers``."""
        workers = f"{len(self.workers)} worker{'' if len(self.workers) == 1 else 's'}"
        return f"{self.queue_full} (queue full), {self.spool_full} (spool full), by {workers}"

    def to_json(self) -> dict[str, Any]:
        return {
            "queue_full": self.queue_full,
            "spool_full": self.spool_full,
            "workers": [w.to_json() for w in self.workers],
        }


_COUNTS = (
    "SELECT hostname, pid, instance, sum(coalesce(dropped_queue_full, 0)), "
    "sum(coalesce(dropped_spool_full, 0)) FROM reports{where} GROUP BY hostname, pid, instance"
)
#: The same expression as the partial index ``reports_dropped`` (``database.py``), so it is used.
_ANY_DROP = "(dropped_queue_full > 0 OR dropped_spool_full > 0)"


def count_drops(db: sqlite3.Connection, query: Query | None = None) -> Drops:
    """The dropped reports over the workers and time ``query`` selects (its other keys are left out)."""
    scope = (query or Query()).for_drops()
    where, params = scope.sql(every_kind=True)
    where += (" AND " if where else " WHERE ") + _ANY_DROP
    return drops_of(db.execute(_COUNTS.format(where=where), params), scope)


def drops_of(rows: Iterable[tuple[str, int, str, int, int]], scope: Query) -> Drops:
    """:class:`Drops` from (hostname, pid, instance, queue full, spool full) rows, one per worker."""
    workers = [
        WorkerDrops(f"{pid}-{instance}", hostname, queue_full, spool_full)
        for hostname, pid, instance, queue_full, spool_full in rows
        if scope.matches_worker(pid, instance, hostname)
    ]
    workers.sort(key=lambda w: (-w.total, w.hostname, w.worker))
    return Drops(tuple(workers))
