"""One report as the catalog knows it: what its metadata record says, and the size of its files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .endpoints import request_endpoint

#: The fields of an entry, in order: the index's columns, and the keys of ``list --json``.
COLUMNS = (
    "name",
    "kind",
    "start",
    "end",
    "method",
    "path",
    "status",
    "duration",
    "trigger",
    "outcome",
    "label",
    "hostname",
    "pid",
    "instance",
    "samples",
    "interval",
    "rate",
    "sampler_cpu",
    "sampler_share",
    "over_budget",
    "dropped_queue_full",
    "dropped_spool_full",
    "bytes",
    "files",
)


@dataclass(frozen=True)
class Entry:
    """One complete report, as its metadata record describes it."""

    name: str
    kind: str
    start: float
    end: float
    method: str | None
    path: str | None
    status: int | None
    duration: float
    trigger: str
    outcome: str
    label: str | None
    hostname: str
    pid: int
    instance: str
    samples: int
    # How it was sampled (null in records written before these were recorded): the interval asked
    # for, the rate achieved, the sampler's CPU seconds and share of the worker's CPU over the
    # report, and, for windows, whether that went over the budget (report.Sampling).
    interval: float | None
    rate: float | None
    sampler_cpu: float | None
    sampler_share: float | None
    over_budget: bool | None
    bytes: int  # every file of the report, its metadata record included
    files: dict[str, str] = field(hash=False)
    # Reports its worker dropped since its previous kept report, its writer's queue full or the upload
    # spool full (report.Dropped; null in records written before they were counted). A record of
    # kind "dropped" holds only these: the drops after a worker's last kept report.
    dropped_queue_full: int | None = None
    dropped_spool_full: int | None = None

    @property
    def endpoint(self) -> str:
        """``METHOD /folded/path`` for requests, ``WORKER window`` for per-worker windows."""
        if self.kind == "dropped":
            return "WORKER dropped"
        if self.kind != "request":
            return "WORKER window"
        return request_endpoint(self.method, self.path)

    @property
    def worker(self) -> str:
        return f"{self.pid}-{self.instance}"

    def to_json(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in COLUMNS} | {"endpoint": self.endpoint}

    @classmethod
    def from_record(cls, record: dict[str, Any], size: int) -> Entry:
        worker = record.get("worker") or {}
        files = record.get("files") or {}
        if not isinstance(files, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in files.items()
        ):
            raise ValueError("bad 'files'")
        dropped = record.get("dropped")
        if dropped is not None and not isinstance(dropped, dict):
            raise ValueError("bad 'dropped'")
        dropped = dropped or {}
        start = float(record["start"])
        return cls(
            name=str(record["name"]),
            kind=str(record.get("kind") or "request"),
            start=start,
            end=float(record.get("end") or start + float(record["duration"])),
            method=_optional_str(record.get("method")),
            path=_optional_str(record.get("path")),
            status=int(record["status"]) if record.get("status") is not None else None,
            duration=float(record["duration"]),
            trigger=str(record.get("trigger") or ""),
            outcome=str(record.get("outcome") or "complete"),
            label=_optional_str(record.get("label")),
            hostname=str(record.get("hostname") or ""),
            pid=int(record.get("pid") or 0),
            instance=str(worker.get("instance") or ""),
            samples=int(record.get("samples") or 0),
            interval=_optional_float(record.get("interval")),
            rate=_optional_float(record.get("rate")),
            sampler_cpu=_optional_float(record.get("sampler_cpu")),
            sampler_share=_optional_float(record.get("sampler_share")),
            over_budget=None if record.get("over_budget") is None else bool(record["over_budget"]),
            dropped_queue_full=_optional_int(dropped.get("queue_full")),
            dropped_spool_full=_optional_int(dropped.get("spool_full")),
            bytes=size,
            files=files,
        )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
