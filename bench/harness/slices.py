"""One slice: a load of GET /work on one warm server, measured from idle to idle.

CPU per request is utime + stime of the master and workers (every thread) from idle to idle (the
writer threads caught up), over the requests wrk counted. What other processes used meanwhile is
the machine's busy time less ours and wrk's: a slice they disturbed is measured again.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Literal

from . import reports
from .load import HEAVY_PATH, WrkResult, wrk
from .server import Server
from .table import log
from .ticks import cpu_ticks, machine_ticks, ms_per_request

#: The plan may take this many times what it takes without a slice measured again.
SLACK = 1.5


@dataclasses.dataclass
class Slice:
    key: str
    round: int
    load: WrkResult
    cpu_ticks: int  # master and workers
    side_ticks: int  # of which the workers' threads other than the main one
    helper_ticks: int  # the helper process, over the same span
    others: float  # the share of the machine other processes used during the load
    backlog: int  # jobs waiting in the spool when the load stopped
    #: The smallest share of the workers' CPU that one worker had (0.5: even, with two). With
    #: keep-alive, wrk's connections stay with the worker that accepted them, and now and then
    #: nearly all of them land on one worker, which then serves alone.
    worker_split: float | None

    @property
    def rps(self) -> float:
        return self.load.rps

    @property
    def requests(self) -> int:
        return self.load.requests


def measure(
    server: Server,
    key: str,
    rnd: int,
    duration: float,
    connections: int,
    isolate: bool,
    extra: Sequence[str] = (),
) -> Slice:
    helper = server.helper()

    def snapshot() -> tuple[dict[int, int], dict[tuple[int, int], int], int, tuple[int, int]]:
        helper_ticks = (cpu_ticks(helper) or 0) if helper is not None else 0
        return server.process_ticks(), server.thread_ticks(), helper_ticks, machine_ticks()

    server.settle()
    cpu0, side0, helper0, (busy0, total0) = snapshot()
    load = wrk(server.url + HEAVY_PATH, duration, connections, isolate, extra)
    backlog, _ = reports.spool(server.report_dir)
    server.settle()
    cpu1, side1, helper1, (busy1, total1) = snapshot()
    per_process = {pid: t - cpu0.get(pid, 0) for pid, t in cpu1.items()}
    cpu, helper_cpu = sum(per_process.values()), helper1 - helper0
    others = max(0, busy1 - busy0 - cpu - helper_cpu - load.cpu_ticks) / max(1, total1 - total0)
    per_worker = [t for pid, t in per_process.items() if pid != server.pid]
    split = min(per_worker) / sum(per_worker) if len(per_worker) >= 2 and sum(per_worker) > 0 else None
    side = sum(t - side0.get(k, 0) for k, t in side1.items())
    return Slice(key, rnd, load, cpu, side, helper_cpu, others, backlog, split)


def cpu_per_request(slices: Sequence[Slice], part: Literal["all", "side", "helper"] = "all") -> float:
    """CPU ms per request: of master and workers, of their side threads, or of the helper."""
    ticks = {
        "all": sum(s.cpu_ticks for s in slices),
        "side": sum(s.side_ticks for s in slices),
        "helper": sum(s.helper_ticks for s in slices),
    }[part]
    return ms_per_request(ticks, sum(s.requests for s in slices))


def log_slice(s: Slice, rounds: int, extra: str = "") -> None:
    split = f", worker split {s.worker_split:.0%}" if s.worker_split is not None else ""
    log(
        f"round {s.round + 1}/{rounds} {s.key:<20} {s.rps:8.1f} req/s ({s.requests} requests, "
        f"errors {s.load.errors}, CPU {ms_per_request(s.cpu_ticks, s.requests):.3f} ms/req, other "
        f"threads {ms_per_request(s.side_ticks, s.requests):.3f}, "
        f"wrk {ms_per_request(s.load.cpu_ticks, s.requests):.3f}, "
        f"other processes {s.others:.0%}{split}{extra})"
    )


@dataclasses.dataclass
class Retry:
    """A slice during which other processes used more than ``max_others`` of the machine, or in which
    one worker did less than ``min_split`` of the work, is measured again, up to ``times`` times,
    while the slices planned (``planned``) still fit in SLACK times their time without a retry."""

    times: int = 0
    max_others: float = 1.0
    min_split: float = 0.0
    planned: int = 0
    durations: list[float] = dataclasses.field(default_factory=list)
    kept: int = 0
    retried: int = 0

    def measure(self, measure: Callable[[], Slice]) -> Slice:
        for attempt in range(self.times + 1):
            t0 = time.monotonic()
            s = measure()
            self.durations.append(time.monotonic() - t0)
            why = self.disturbed(s)
            if why is None or attempt == self.times or not self.time_left():
                break
            self.retried += 1
            log(f"round {s.round + 1} {s.key:<20} {s.rps:8.1f} req/s: discarded, {why}; measuring it again")
        self.kept += 1
        return s

    def disturbed(self, s: Slice) -> str | None:
        if s.others > self.max_others:
            return f"other processes used {s.others:.0%} of the machine"
        if s.worker_split is not None and s.worker_split < self.min_split:
            return f"one worker did only {s.worker_split:.0%} of the work"
        return None

    def time_left(self) -> bool:
        typical = statistics.median(self.durations)
        return sum(self.durations) + typical * (self.planned - self.kept) < SLACK * typical * self.planned

    def summary(self) -> str:
        return (
            f"{self.retried} slice(s) measured again (other processes above {self.max_others:.0%} of "
            f"the machine"
            + (f", or a worker under {self.min_split:.0%} of the work)" if self.min_split else ")")
        )
