"""A report: one profile (a pyinstrument Session) plus the facts that name and describe it.

Everything that turns request data into file names lives here, so the sanitizing rules are in
one place: a name holds only ``[A-Za-z0-9._-]``, never a separator, never starts with a dot,
and stays far below file-system name limits whatever the URL was.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from dataclasses import dataclass
from typing import Any

from .directory import (
    FORMAT_SUFFIXES,
    KIND_DROPPED,
    KIND_REQUEST,
    KIND_WORKER,
    METADATA_SUFFIX,
    METADATA_VERSION,
)

OUTCOME_TIMEOUT = "timeout"
MAX_PATH_PART = 80
MAX_METHOD_PART = 16

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EDGES = "._-"


def sanitize_path(path: str) -> str:
    """A readable, file-system-safe rendering of a URL path (never empty, never a separator)."""
    safe = _UNSAFE.sub("_", path).strip(_EDGES)
    safe = safe[:MAX_PATH_PART].rstrip(_EDGES)
    return safe or "root"


def sanitize_method(method: str) -> str:
    safe = re.sub(r"[^A-Z0-9]", "", method.upper())[:MAX_METHOD_PART]
    return safe or "X"


def utc_stamp(epoch: float) -> str:
    """Sortable UTC time with microseconds: 20261126T143618.123456Z."""
    whole = int(epoch)
    micros = round((epoch - whole) * 1_000_000)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(whole)) + f".{micros:06d}Z"


def iso_time(epoch: float) -> str:
    stamp = utc_stamp(epoch)
    return f"{stamp[0:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:]}"


@dataclass(frozen=True)
class WorkerIdentity:
    """Who wrote a report. ``instance`` is random per worker process, so names never collide
    across hosts or containers that reuse the same pids."""

    pid: int
    age: int | None
    worker_class: str
    hostname: str
    instance: str

    @classmethod
    def current(cls, worker: Any) -> WorkerIdentity:
        age = getattr(worker, "age", None)
        return cls(
            pid=os.getpid(),
            age=age if isinstance(age, int) else None,
            worker_class=type(worker).__name__,
            hostname=socket.gethostname(),
            instance=secrets.token_hex(3),
        )


@dataclass(frozen=True)
class RequestFacts:
    method: str
    path: str  # percent-decoded, without the query string
    status: int | None
    started_at: float  # epoch seconds
    duration: float  # seconds, from the start of the request hook to the end of its body
    trigger: str
    outcome: str = ""  # "" for a finished request, OUTCOME_TIMEOUT when the worker was aborted
    # Only when the user opted in (GUNICORN_PYINSTRUMENT_RECORD_QUERY / RECORD_HEADERS).
    query: str | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True)
class WindowFacts:
    """A per-worker window: everything one worker ran from ``started_at`` for ``duration``."""

    started_at: float
    duration: float


@dataclass(frozen=True)
class DropFacts:
    """Reports a worker dropped after its last kept one: from the first drop, ``started_at``, to
    the last, ``duration`` later. Recorded on their own when the worker exits."""

    started_at: float
    duration: float


@dataclass(frozen=True)
class Dropped:
    """How many reports a worker dropped (since its previous kept report), by cause: its writer's
    queue was full (``QUEUE_SIZE``), or the upload spool was over its bound (``SPOOL_MAX_BYTES``)."""

    queue_full: int = 0
    spool_full: int = 0

    def __bool__(self) -> bool:
        return bool(self.queue_full or self.spool_full)

    def __add__(self, other: Dropped) -> Dropped:
        return Dropped(self.queue_full + other.queue_full, self.spool_full + other.spool_full)

    def to_json(self) -> dict[str, int]:
        return {"queue_full": self.queue_full, "spool_full": self.spool_full}


@dataclass(frozen=True)
class Sampling:
    """How a report was sampled, beyond its interval and sample count: the rate achieved, and what
    the sampler engine's thread cost over the report's span (None where it does not apply: the
    cost with pyinstrument's engine, whose work is done in the profiled thread itself)."""

    rate: float | None = None  # samples per second of the report's span
    cpu: float | None = None  # the sampler thread's CPU seconds over the span
    share: float | None = None  # the same, as a share of the worker's CPU over the span
    over_budget: bool | None = None  # windows: the sampler's CPU went over MAX_OVERHEAD of the span


def status_code(status: object) -> int | None:
    """gunicorn gives WSGI statuses as '200 OK' and ASGI ones as 200."""
    if isinstance(status, int):
        return status
    if isinstance(status, str):
        head = status.split(" ", 1)[0]
        if head.isascii() and head.isdigit():
            return int(head)
    return None


@dataclass(frozen=True)
class Report:
    name: str
    facts: RequestFacts | WindowFacts | DropFacts
    worker: WorkerIdentity
    label: str | None
    formats: tuple[str, ...]
    samples: int
    interval: float
    sampling: Sampling = Sampling()
    dropped: Dropped = Dropped()  # set by the writer, when it writes the report

    @staticmethod
    def make_name(
        facts: RequestFacts | WindowFacts | DropFacts, worker: WorkerIdentity, sequence: int
    ) -> str:
        millis = round(facts.duration * 1000)
        if isinstance(facts, WindowFacts):
            what, marker = "WORKER_window", ""
        elif isinstance(facts, DropFacts):
            what, marker = "WORKER_dropped", ""
        else:
            what = f"{sanitize_method(facts.method)}_{sanitize_path(facts.path)}"
            marker = f"_{facts.outcome.upper()}" if facts.outcome else ""
        who = f"{worker.pid}-{worker.instance}-{sequence}"
        return f"{utc_stamp(facts.started_at)}_{what}_{millis}ms{marker}_{who}"

    @property
    def kind(self) -> str:
        if isinstance(self.facts, RequestFacts):
            return KIND_REQUEST
        return KIND_WORKER if isinstance(self.facts, WindowFacts) else KIND_DROPPED

    def filename(self, fmt: str) -> str:
        return self.name + FORMAT_SUFFIXES[fmt]

    @property
    def metadata_name(self) -> str:
        return self.name + METADATA_SUFFIX

    def metadata(self, files: dict[str, str]) -> dict[str, Any]:
        """The JSON record written beside the report files. No query string, header or cookie values
        unless the user opted in to some (``query``, ``headers``).
        Request and worker reports and records of dropped reports have the same keys; what a window
        (or a record of drops) has no value for is null."""
        facts = self.facts
        request = facts if isinstance(facts, RequestFacts) else None
        return {
            "version": METADATA_VERSION,
            "kind": self.kind,
            "name": self.name,
            "time": iso_time(facts.started_at),
            "start": facts.started_at,
            "end": round(facts.started_at + facts.duration, 6),
            "method": request.method if request else None,
            "path": request.path if request else None,
            "query": request.query if request else None,
            "headers": (request.headers or {}) if request else {},
            "status": request.status if request else None,
            "duration": round(facts.duration, 6),
            "trigger": request.trigger if request else self.kind,
            "outcome": (request.outcome if request else "") or "complete",
            "label": self.label,
            "hostname": self.worker.hostname,
            "pid": self.worker.pid,
            "worker": {
                "age": self.worker.age,
                "class": self.worker.worker_class,
                "instance": self.worker.instance,
            },
            "samples": self.samples,
            "interval": self.interval,
            "rate": _rounded(self.sampling.rate, 2),
            "sampler_cpu": _rounded(self.sampling.cpu, 6),
            "sampler_share": _rounded(self.sampling.share, 6),
            "over_budget": self.sampling.over_budget,
            "dropped": self.dropped.to_json(),
            "files": files,
        }


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)
