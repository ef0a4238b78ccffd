"""Per-worker mode's memory phase: does a worker's RSS stay flat over minutes of load?

Every server (each worker type in per-worker mode and, for comparison, with the plugin off) runs at
the same time, each under a paced load of its own (wrk would run them flat out). Every 10 s, each
worker's VmRSS and RssAnon. Growth counts from the end of a warm-up: at 1 minute a worker has not
yet written a window. Target: growth under 20 MB, at the end and at its highest, in per-worker mode.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
import statistics
import time
from collections.abc import Callable

from harness import reports
from harness.load import PacedLoad
from harness.server import Server
from harness.table import log, table, verdict
from harness.ticks import started_at

RATE, CONNECTIONS = 20.0, 2  # per server: requests/s, keep-alive connections
EVERY = 10.0  # seconds between samples
WARMUP = 120.0  # seconds, at most a third of the phase
MAX_GROWTH = 20.0  # MB
MB = 1024 * 1024


def memory(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) of a process in bytes; zero when it is gone."""
    found = dict.fromkeys(("VmRSS", "RssAnon"), 0)
    with contextlib.suppress(OSError), open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in found:
                found[key] = int(value.split()[0]) * 1024
    return found["VmRSS"], found["RssAnon"]


@dataclasses.dataclass
class Track:
    server: Server
    load: PacedLoad
    samples: list[tuple[float, int, int]] = dataclasses.field(default_factory=list)  # seconds, RSS, anon
    born: float | None = None  # when its first worker started, epoch
    restarts: int = 0

    def at(self, seconds: float) -> tuple[float, int, int]:
        """The first sample at or after ``seconds``, or the last."""
        return next((s for s in self.samples if s[0] >= seconds), self.samples[-1])


def windows(track: Track) -> str:
    """The windows written: how many, how they cover the worker's life, their stacks and size."""
    directory = track.server.report_dir
    metas = [m for m in reports.metadata(directory, mark="") if m.get("kind") == "worker"]
    metas.sort(key=lambda m: float(m["start"]))
    if not metas:
        return "no window"
    spans = [(float(m["start"]), float(m["end"])) for m in metas]
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(spans)]
    sessions = [
        os.path.join(directory, m["files"]["session"]) for m in metas if "session" in m.get("files", {})
    ]
    stacks = 0
    with (
        contextlib.suppress(OSError, ValueError, IndexError),
        open(sessions[-2 if len(sessions) > 1 else -1]) as f,
    ):
        stacks = len(json.load(f).get("frame_records", []))  # the last full window
    size = statistics.median(os.path.getsize(p) for p in sessions) / 1024 if sessions else 0
    text = (
        f"{len(metas)} windows, gaps between them {sum(g for g in gaps if g > 0):.2f} s in all; "
        f"{stacks} distinct stacks in the last full one, {size:.0f} KB a session"
    )
    if track.born is not None:
        text += f"; the first from {spans[0][0] - track.born:+.2f} s after the worker started"
    if track.server.stopped_at is not None:
        text += f", the last ending {track.server.stopped_at - spans[-1][1]:.2f} s before the master was gone"
    return text


def sample(tracks: list[Track], seconds: float) -> None:
    start = time.monotonic()
    known = {id(t): set(t.server.workers()) for t in tracks}
    next_line = 0.0
    while (elapsed := time.monotonic() - start) < seconds + EVERY / 2:
        for t in tracks:
            pids = t.server.workers()
            t.restarts += len(set(pids) - known[id(t)])
            known[id(t)] |= set(pids)
            mem = [memory(p) for p in pids]
            t.samples.append((round(elapsed), sum(m[0] for m in mem), sum(m[1] for m in mem)))
        if elapsed >= next_line:
            next_line += 60
            rss = ", ".join(f"{t.server.name} {t.samples[-1][1] / MB:.1f} MB" for t in tracks)
            log(f"  {elapsed / 60:4.1f} min: {rss}")
        time.sleep(max(0.0, start + len(tracks[0].samples) * EVERY - time.monotonic()))


def memory_phase(
    kinds: list[str], variants: list[str], server: Callable[[str, str], Server], minutes: float
) -> list[str]:
    """``server(kind, variant)``: a server, not started. Prints the tables; returns the verdicts."""
    servers = [server(kind, variant) for kind in kinds for variant in variants]
    tracks = [Track(s, PacedLoad(s.port, RATE, CONNECTIONS)) for s in servers]
    seconds, warmup = minutes * 60, min(WARMUP, minutes * 20)
    try:
        for t in tracks:
            t.server.launch()
        for t in tracks:
            t.server.wait_ready()
            t.born = min(filter(None, map(started_at, t.server.workers())), default=None)
        log(f"  {len(tracks)} servers, each at {RATE:g} req/s on {CONNECTIONS} connections, {minutes:g} min")
        for t in tracks:
            t.load.start()
        sample(tracks, seconds)
    finally:
        for t in tracks:
            t.load.stop()
            t.server.stop()
    return memory_report(tracks, seconds, warmup)


def growth(t: Track, since: float) -> tuple[int, int, int]:
    """RSS at ``since`` seconds, and its growth after: at the end and at its highest (bytes)."""
    base = t.at(since)[1]
    return base, t.samples[-1][1] - base, max(rss for when, rss, _ in t.samples if when >= since) - base


HEADS = (
    "server,1 min,warm-up,end,growth,max growth,from 1 min,max from 1 min,anon growth,vs off,requests,errors"
)


def memory_report(tracks: list[Track], seconds: float, warmup: float) -> list[str]:
    log()
    log(f"Worker RSS (MB) under load for {seconds / 60:g} min, growth from the warm-up's end ({warmup:g} s):")
    off = {t.server.name.split("/")[0]: t.samples[-1][1] for t in tracks if t.server.settings is None}
    rows, verdicts = [], []
    for t in tracks:
        name, kind, end = t.server.name, t.server.name.split("/")[0], t.samples[-1][1]
        at1, grown1, most1 = growth(t, 60)
        wu, grown, most = growth(t, warmup)
        anon = t.samples[-1][2] - t.at(warmup)[2]
        vs_off = f"{(end - off[kind]) / MB:+.1f}" if t.server.settings and kind in off else "-"
        mb = [f"{v / MB:.1f}" for v in (at1, wu, end)] + [
            f"{v / MB:+.1f}" for v in (grown, most, grown1, most1, anon)
        ]
        rows.append([name, *mb, vs_off, t.load.ok, t.load.errors])
        if t.server.settings is not None:
            ok = max(grown, most) < MAX_GROWTH * MB and not t.restarts
            verdicts.append(
                f"{verdict(ok)}: {name} RSS growth after the warm-up {grown / MB:+.1f} MB at the end, "
                f"{most / MB:+.1f} MB at most (target < {MAX_GROWTH:g} MB; {t.restarts} worker restarts)"
            )
    table(HEADS.split(","), rows)
    minutes = range(int(seconds // 60) + 1)
    rss = [[t.server.name, *(f"{t.at(m * 60)[1] / MB:.1f}" for m in minutes)] for t in tracks]
    table(("RSS (MB) at minute", *map(str, minutes)), rss)
    for t in tracks:
        for line in t.server.problems()[:5]:
            log(f"  log ({t.server.name}): {line}")
        if t.server.settings is not None:
            log(f"  {t.server.name}: {windows(t)}")
    errors, retried = sum(t.load.errors for t in tracks), sum(t.load.retried for t in tracks)
    return [
        *verdicts,
        f"{verdict(errors == 0)}: memory phase answered every request ({errors} errors; {retried} sent again "
        "on a new connection after the server closed a keep-alive one)",
    ]
