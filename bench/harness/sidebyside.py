"""Configurations compared side by side, over rounds, on a machine whose speed drifts.

Every configuration's server starts once and is warmed up, and the idle ones are frozen. Each round,
every server in turn is thawed, gets a slice of load and is frozen again, in an order rotated and
reversed from round to round. A round's slices run seconds apart, so a ratio is judged on the median
of the rounds' own ratios, printed with their quartiles, the ratio of the medians and by CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
from collections.abc import Mapping, Sequence

from .load import HEAVY_PATH, wrk
from .server import Server
from .slices import Retry, Slice, cpu_per_request, log_slice, measure
from .table import log

WARMUP = 2.0  # seconds of load before a server is measured


def round_order(keys: Sequence[str], rnd: int) -> list[str]:
    """Rotated every other round and reversed every other round: no configuration always runs first
    or last, nor always right after the same one (with two: ab, ba, ba, ab, ...)."""
    shift = (rnd // 2) % len(keys)
    order = [*keys[shift:], *keys[:shift]]
    return order[::-1] if rnd % 2 else order


@dataclasses.dataclass
class SideBySide:
    rounds: int
    duration: float
    connections: int
    isolate: bool
    freeze: bool = True
    wrk_extra: Sequence[str] = ()
    retry: Retry = dataclasses.field(default_factory=Retry)
    #: Requests each server answered: warm-up, and every slice measured (discarded ones too).
    served: dict[str, int] = dataclasses.field(default_factory=dict)
    restarts: int = 0  # workers gunicorn started anew during the slices

    def run(self, servers: Mapping[str, Server]) -> list[Slice]:
        """Start the servers, measure them, stop them: the slices kept, in the order measured."""
        try:
            for server in servers.values():
                server.launch()
            for server in servers.values():
                server.wait_ready()
            return self.rounds_of(servers)
        finally:
            for key, server in servers.items():
                server.stop()
                for line in server.problems()[:5]:
                    log(f"  log ({key}): {line}")

    def rounds_of(self, servers: Mapping[str, Server]) -> list[Slice]:
        for key, server in servers.items():
            warm = wrk(server.url + HEAVY_PATH, WARMUP, self.connections, self.isolate, self.wrk_extra)
            self.served[key] = warm.requests
            server.settle()
            if self.freeze:
                server.freeze()
        slices: list[Slice] = []
        for rnd in range(self.rounds):
            for key in round_order(list(servers), rnd):
                server = servers[key]
                known = set(server.workers())
                server.thaw()
                try:
                    slices.append(self.retry.measure(functools.partial(self.measure, server, key, rnd)))
                finally:
                    if self.freeze:
                        server.freeze()
                log_slice(slices[-1], self.rounds)
                if new := set(server.workers()) - known:
                    self.restarts += len(new)
                    log(f"  {key}: {len(new)} worker(s) started anew during the slice (see gunicorn's log)")
        return slices

    def measure(self, server: Server, key: str, rnd: int) -> Slice:
        s = measure(server, key, rnd, self.duration, self.connections, self.isolate, self.wrk_extra)
        self.served[key] += s.requests
        return s


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclasses.dataclass
class Ratio:
    """Requests/s of one configuration over another's."""

    rounds: list[float]  # each round's own ratio
    of_medians: float  # the ratio of the medians
    by_cpu: float  # CPU per request, the other's over this one's: what a CPU-bound server would show

    @property
    def median(self) -> float:
        return median(self.rounds)

    @property
    def quartiles(self) -> str:
        if len(self.rounds) < 2:
            return "-"
        q1, _, q3 = statistics.quantiles(self.rounds, n=4)
        return f"{q1:.3f}-{q3:.3f}"


def ratio(slices: Sequence[Slice], num: str, den: str) -> Ratio:
    by_round: dict[int, dict[str, float]] = {}
    for s in slices:
        by_round.setdefault(s.round, {})[s.key] = s.rps
    rounds = [r[num] / r[den] for _, r in sorted(by_round.items()) if num in r and den in r and r[den]]
    a, b = [s for s in slices if s.key == num], [s for s in slices if s.key == den]
    if not a or not b:
        return Ratio(rounds, float("nan"), float("nan"))
    return Ratio(
        rounds,
        median([s.rps for s in a]) / median([s.rps for s in b]),
        cpu_per_request(b) / cpu_per_request(a),
    )


def log_ratio(label: str, r: Ratio) -> None:
    log(
        f"  {label:<28} {r.median:.3f} (quartiles {r.quartiles}; ratio of medians {r.of_medians:.3f}; "
        f"by CPU {r.by_cpu:.3f})   rounds: {', '.join(f'{x:.3f}' for x in r.rounds)}"
    )


def summary_heads(base: str) -> tuple[str, ...]:
    """The headers of summary()'s columns."""
    return ("median req/s", f"vs {base}", "quartiles", "by CPU", "CPU ms/req", "other threads", "errors")


def legend(base: str) -> str:
    return (
        f"vs {base}: the median of the rounds' own ratios of requests/s, quartiles: their middle half; "
        f"by CPU: {base}'s CPU per request over this one's; CPU ms/req: master and workers, from idle to "
        "idle; other threads: the workers' threads other than the main one; errors: wrk's non-2xx and "
        "socket errors"
    )


def summary(slices: Sequence[Slice], key: str, base: str) -> list[str]:
    """A configuration's figures over the run, against those of ``base`` in the same rounds (vs
    base: the median of the rounds' ratios); CPU ms/req: master and workers; other threads: the
    workers' threads other than the main one."""
    mine = [s for s in slices if s.key == key]
    r = ratio(slices, key, base)
    versus = ["-", "", ""]
    if key == base:
        versus = ["1.000", "", ""]
    elif r.rounds:
        versus = [f"{r.median:.3f}", r.quartiles, f"{r.by_cpu:.3f}"]
    return [
        f"{median([s.rps for s in mine]):.1f}",
        *versus,
        f"{cpu_per_request(mine):.3f}",
        f"{cpu_per_request(mine, 'side'):.3f}",
        str(sum(s.load.errors for s in mine)),
    ]


def log_rounds(slices: Sequence[Slice]) -> None:
    """Each round's requests/s, in the order measured."""
    log("Requests/s per round, in the order measured:")
    for rnd in sorted({s.round for s in slices}):
        mine = [s for s in slices if s.round == rnd]
        line = ", ".join(f"{s.key} {s.rps:.1f}" for s in mine)
        others = max(s.others for s in mine)
        log(f"  round {rnd + 1}: {line}   (other processes: at most {others:.0%} of the machine)")
    log()
