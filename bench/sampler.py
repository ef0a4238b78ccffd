"""Sampler engine benchmark: can every request be profiled, always, at 100 Hz, for under 3 % of throughput?

Starts the benchmark app (bench/app.py, the Python-heavy ``/work`` endpoint) under ``gunicorn -w 2``,
for two worker types (``sync``, and ``gthread --threads 4``), in four configurations each, all four
servers running side by side, and loads one at a time with wrk for a short slice, over many rounds
(the order rotated and reversed from round to round)::

    off           -c gunicorn_pyinstrument/config.py with GUNICORN_PYINSTRUMENT=0
    sampler       ENGINE=sampler, INTERVAL=0.01 (100 Hz), SAMPLE_RATE=1, FORMATS=session,
                  MIN_DURATION=0.05: every request is sampled, and only those of 50 ms or more are
                  written; /work takes a few milliseconds, so very few reports are written
    sampler-all   the same with MIN_DURATION=0: a report written for every request
    pyinstrument  ENGINE=pyinstrument (pyinstrument's profiler), INTERVAL=0.01, SAMPLE_RATE=1,
                  FORMATS=session, MIN_DURATION=0: every request profiled and written, for comparison
    sampler-50hz  as sampler with INTERVAL=0.02 (50 Hz); only with --configs

The target is ``sampler / off >= 0.97`` for each worker type, judged on the median over the rounds
of each round's own ratio of requests/s: this shared machine's speed drifts by 10-30 % over tens of
seconds (the same server, plugin off, measured from 400 to 530 requests/s a minute apart), and the
slices of one round run within seconds of each other, where earlier versions of this benchmark,
restarting a server for every run, compared runs half a minute apart. The quartiles of the rounds'
ratios and the ratio of the median requests/s are printed beside it.

For each slice it also measures the CPU time of the gunicorn master and workers per request
(utime+stime from /proc), the part spent in the workers' threads other than the main one (sync:
the sampler and writer threads), and, over the run, counts the reports written against the
requests served and, from the reports' metadata, the sampling rate actually achieved during
requests. It prints a table and PASS/FAIL lines and exits 0 unless something crashed. A slice
during which other processes used much of the machine, or in which one worker did less than a
quarter of the work, is run again, once. ``make bench-sampler`` runs it (about 6 minutes);
``--rounds 3 --duration 2`` for a quick look.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from throughput import (
    BENCH_DIR,
    CONFIG_FILE,
    GUNICORN,
    ISOLATION_NICE,
    WrkResult,
    can_isolate,
    children,
    free_port,
    log,
    machine_ticks,
    median,
    ms_per_request,
    process_ticks,
    set_autogroup_nice,
    side_thread_ticks,
    stop_master,
    wait_until_idle,
)
from throughput import run_wrk as throughput_run_wrk

HEAVY_PATH = "/work"
READY_PATH = "/ping"
HEAVY_MARK = "_GET_work_"
WORKERS = 2

KINDS: dict[str, list[str]] = {
    "sync": ["-k", "sync"],
    "gthread": ["-k", "gthread", "--threads", "4"],
}
#: wrk connections per worker type: enough to keep every worker (and, for gthread, several of its
#: threads) busy.
CONNECTIONS = {"sync": 4, "gthread": 8}
#: wrk closes the connection after each response for gthread too (sync workers always do): with
#: keep-alive, each connection stays with the worker that accepted it, and in a first run of this
#: benchmark nearly all of wrk's 8 connections often landed on one of the two workers, which then
#: served alone (half the requests/s, the other core idle), in any configuration.
CLOSE = ("-H", "Connection: close")

CONFIGS = ("off", "sampler", "sampler-all", "pyinstrument", "sampler-50hz")
#: What a run without --configs compares (sampler-50hz, the sampler at INTERVAL=0.02, on request).
DEFAULT_CONFIGS = CONFIGS[:4]
SETTINGS: dict[str, dict[str, str]] = {
    "sampler": {"ENGINE": "sampler", "MIN_DURATION": "0.05"},
    "sampler-all": {"ENGINE": "sampler", "MIN_DURATION": "0"},
    "pyinstrument": {"ENGINE": "pyinstrument", "MIN_DURATION": "0"},
    "sampler-50hz": {"ENGINE": "sampler", "MIN_DURATION": "0.05", "INTERVAL": "0.02"},
}
COMMON = {"INTERVAL": "0.01", "SAMPLE_RATE": "1", "FORMATS": "session"}

TARGET = 0.97
#: A run in which one worker did less than this share of the workers' CPU is run again (once).
MIN_WORKER_SPLIT = 0.25
#: (label, numerator, denominator, target or None for information only), per worker type.
RATIOS = (
    ("sampler / off", "sampler", "off", TARGET),
    ("sampler-all / off", "sampler-all", "off", None),
    ("pyinstrument / off", "pyinstrument", "off", None),
    ("sampler-50hz / off", "sampler-50hz", "off", None),
)


# --- wrk ---


def run_wrk(url: str, duration: float, connections: int, isolate: bool) -> WrkResult:
    """throughput.run_wrk (one wrk thread), each request on a connection of its own."""
    return throughput_run_wrk(url, duration, 1, connections, isolate, CLOSE)


# --- one server ---


def server_env(config: str, report_dir: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
    if config == "off":
        env["GUNICORN_PYINSTRUMENT"] = "0"
        return env
    env["GUNICORN_PYINSTRUMENT"] = "1"
    env["GUNICORN_PYINSTRUMENT_DIR"] = report_dir
    for name, value in {**COMMON, **SETTINGS[config]}.items():
        env[f"GUNICORN_PYINSTRUMENT_{name}"] = value
    return env


class Server:
    def __init__(self, kind: str, config: str, workdir: str, isolate: bool) -> None:
        self.kind = kind
        self.config = config
        self.report_dir = os.path.join(workdir, "reports")
        self.log_path = os.path.join(workdir, "gunicorn.log")
        self.workdir = workdir
        self.port = free_port()
        self.isolate = isolate
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        cmd = [
            GUNICORN,
            "-w",
            str(WORKERS),
            *KINDS[self.kind],
            "-b",
            f"127.0.0.1:{self.port}",
            "--no-control-socket",
            "--pythonpath",
            BENCH_DIR,
            "-c",
            CONFIG_FILE,
            "app:app",
        ]
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                cmd,
                cwd=self.workdir,
                env=server_env(self.config, self.report_dir),
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if self.isolate:
            set_autogroup_nice(self.pid, ISOLATION_NICE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                what = f"{self.kind} {self.config}"
                raise RuntimeError(f"gunicorn ({what}) exited at start-up:\n{self.read_log()}")
            try:
                with urllib.request.urlopen(self.url + READY_PATH, timeout=2) as resp:
                    if resp.status == 200 and len(self.workers()) == WORKERS:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn ({self.kind} {self.config}) not ready after 30 s:\n{self.read_log()}")

    def workers(self) -> list[int]:
        return children(self.pid)

    def ticks(self) -> dict[int, int]:
        """CPU ticks of the master and each worker."""
        return process_ticks([self.pid, *self.workers()])

    def side_ticks(self) -> dict[tuple[int, int], int]:
        """CPU ticks of the workers' threads other than the main one."""
        return side_thread_ticks(self.workers())

    def settle(self, timeout: float = 15.0) -> None:
        """Until the workers are idle (the writer threads have caught up); the sampler thread, which
        keeps waking at the interval once started, costs well under a tick per quarter second."""
        wait_until_idle(lambda: sum(self.ticks().values()), timeout)

    def stop(self) -> None:
        if self.proc is not None:
            stop_master(self.proc, f"{self.kind} {self.config}")

    def read_log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


# --- one run ---


@dataclasses.dataclass
class Run:
    kind: str
    config: str
    round: int
    load: WrkResult | None = None
    cpu_ticks: int = 0  # master + workers, over the load and the writer's catch-up
    side_ticks: int = 0  # of which the workers' threads other than the main one
    others_share: float = 0.0  # CPU used by other processes during the load, 0..1
    #: The smallest share of the workers' CPU over the load that one worker had (0.5: even). With
    #: keep-alive (gthread), wrk's connections stay with the worker that accepted them, and now and
    #: then nearly all of them land on one worker, which then serves alone.
    worker_split: float = 0.5

    @property
    def key(self) -> str:
        return f"{self.kind}/{self.config}"

    @property
    def rps(self) -> float:
        return self.load.rps if self.load else 0.0

    @property
    def errors(self) -> int:
        return self.load.non_2xx + self.load.socket_errors if self.load else 0


@dataclasses.dataclass
class Written:
    """What a server wrote over the whole run (every slice and the warm-up)."""

    served: int = 0
    reports: int = 0
    samples: int = 0  # sum of the reports' samples
    sampled_seconds: float = 0.0  # sum of the reports' durations
    log_problems: list[str] = dataclasses.field(default_factory=list)


def read_reports(server: Server, served: int) -> Written:
    written = Written(served=served)
    try:
        names = [n for n in os.listdir(server.report_dir) if n.endswith(".meta.json") and HEAVY_MARK in n]
    except FileNotFoundError:
        names = []
    written.reports = len(names)
    for name in names:
        with contextlib.suppress(OSError, ValueError), open(os.path.join(server.report_dir, name)) as f:
            meta = json.load(f)
            written.samples += int(meta.get("samples") or 0)
            written.sampled_seconds += float(meta.get("duration") or 0.0)
    written.log_problems = [
        line
        for line in server.read_log().splitlines()
        if "gunicorn-pyinstrument" in line
        and ("error" in line.lower() or "could not" in line or "dropped" in line)
    ]
    return written


def measure(server: Server, round_no: int, args: argparse.Namespace) -> Run:
    """One slice of load on a running (warm) server."""
    run = Run(server.kind, server.config, round_no)
    cpu0, side0 = server.ticks(), server.side_ticks()
    busy0, total0 = machine_ticks()
    run.load = run_wrk(server.url + HEAVY_PATH, args.duration, CONNECTIONS[server.kind], args.isolate)
    server.settle()
    cpu1, side1 = server.ticks(), server.side_ticks()
    busy1, total1 = machine_ticks()
    run.cpu_ticks = sum(t - cpu0.get(pid, 0) for pid, t in cpu1.items())
    per_worker = [t - cpu0.get(pid, 0) for pid, t in cpu1.items() if pid != server.pid]
    if len(per_worker) == WORKERS and sum(per_worker) > 0:
        run.worker_split = min(per_worker) / sum(per_worker)
    run.side_ticks = sum(t - side0.get(key, 0) for key, t in side1.items())
    others = (busy1 - busy0) - run.cpu_ticks - run.load.cpu_ticks
    run.others_share = max(0, others) / max(1, total1 - total0)
    return run


# --- the report ---


def load_cpu(runs: list[Run], side: bool = False) -> float:
    ticks = sum(r.side_ticks if side else r.cpu_ticks for r in runs)
    return ms_per_request(ticks, sum(r.load.requests for r in runs if r.load))


def round_ratios(runs: list[Run], num: str, den: str) -> list[float]:
    """Each round's own ratio of requests/s: the two slices ran within seconds of each other."""
    ratios = []
    for rnd in sorted({r.round for r in runs}):
        a = [r.rps for r in runs if r.key == num and r.round == rnd]
        b = [r.rps for r in runs if r.key == den and r.round == rnd]
        if a and b and b[0] > 0:
            ratios.append(a[0] / b[0])
    return ratios


def quartiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


def report(
    runs: list[Run], written: dict[str, Written], args: argparse.Namespace, elapsed: float, retried: int
) -> bool:
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.key, []).append(run)
    med = {key: median([r.rps for r in rs]) for key, rs in groups.items()}
    log("")
    log(
        f"Results: {args.rounds} rounds x {args.duration:g} s per configuration, wrk -t1 on GET {HEAVY_PATH} "
        f"(-c{CONNECTIONS['sync']} for sync, -c{CONNECTIONS['gthread']} for gthread, 'Connection: close'), "
        f"gunicorn -w {WORKERS}"
    )
    log("")
    head = (
        f"{'worker':<8} {'config':<13} {'median req/s':>12} {'vs off':>7} {'min':>8} {'max':>8} "
        f"{'CPU ms/req':>10} {'other thr':>9} {'errors':>6} {'written/served':>16} {'Hz':>5}"
    )
    log(head)
    log("-" * len(head))
    for kind in KINDS:
        for config in CONFIGS:
            key = f"{kind}/{config}"
            if key not in groups:
                continue
            rs = groups[key]
            ratios = round_ratios(runs, key, f"{kind}/off")
            vs = (
                f"{median(ratios):.3f}" if ratios and config != "off" else "1.000" if config == "off" else "-"
            )
            w = written.get(key, Written())
            shown = "-" if config == "off" else f"{w.reports}/{w.served}"
            hz = f"{w.samples / w.sampled_seconds:.0f}" if w.sampled_seconds > 0 and config != "off" else "-"
            log(
                f"{kind:<8} {config:<13} {med[key]:>12.1f} {vs:>7} {min(r.rps for r in rs):>8.1f} "
                f"{max(r.rps for r in rs):>8.1f} {load_cpu(rs):>10.3f} {load_cpu(rs, side=True):>9.3f} "
                f"{sum(r.errors for r in rs):>6} {shown:>16} {hz:>5}"
            )
    log("")
    log(
        "vs off: the median, over the rounds, of each round's requests/s against off's in the same round. "
        "CPU ms/req: CPU time (utime+stime) of the gunicorn master and workers per request, over the load "
        "and until the workers are idle again; other thr: the part spent in the workers' threads other "
        "than the main one (sync: the sampler and writer threads; gthread: also the request threads); "
        "errors: non-2xx responses and socket errors seen by wrk; written/served: .meta.json reports of "
        "/work for the requests wrk saw answered (warm-up included); Hz: samples per second of request "
        "time in the reports written (the sampling rate achieved; pyinstrument's profiler samples on "
        "Python calls, so its figure is not comparable)."
    )
    log("")
    log("Per-round requests/s (round: configuration order as run):")
    for rnd in sorted({r.round for r in runs}):
        in_round = [r for r in runs if r.round == rnd]
        log(
            f"  round {rnd + 1}: "
            + ", ".join(
                f"{r.key} {r.rps:.1f}" + (f" (split {r.worker_split:.0%})" if r.worker_split < 0.4 else "")
                for r in in_round
            )
            + f"   (other processes: {max(r.others_share for r in in_round):.0%} of the machine at most)"
        )
    log("")
    log(
        "Ratios: the median of the rounds' own ratios (the verdict), their middle half (quartiles), the "
        "ratio of the medians, and what the CPU per request predicts:"
    )
    verdicts: list[str] = []
    for kind in KINDS:
        for label, num, den, target in RATIOS:
            n, d = f"{kind}/{num}", f"{kind}/{den}"
            if n not in med or d not in med:
                continue
            per_round = round_ratios(runs, n, d)
            ratio = median(per_round)
            q1, q3 = quartiles(per_round)
            by_cpu = load_cpu(groups[d]) / load_cpu(groups[n])
            log(
                f"  {kind:<8} {label:<20} {ratio:.3f}  (quartiles {q1:.3f}-{q3:.3f}; ratio of medians "
                f"{med[n] / med[d]:.3f}; by CPU {by_cpu:.3f})   "
                f"rounds: {', '.join(f'{x:.3f}' for x in per_round)}"
            )
            if target is not None:
                verdict = "PASS" if ratio >= target else "FAIL"
                verdicts.append(f"{verdict}: {kind} {label} = {ratio:.3f} (target >= {target})")
            else:
                verdicts.append(f"info: {kind} {label} = {ratio:.3f}")
    problems = [(key, line) for key, w in written.items() for line in w.log_problems]
    if problems:
        log("")
        for key, line in problems[:10]:
            log(f"  log ({key}): {line}")
    log("")
    for line in verdicts:
        log(line)
    log("")
    log(
        f"Run time: {elapsed:.0f} s; {retried} slice(s) discarded and run again because other processes "
        f"used more than {args.max_others:.0%} of the machine, or one worker did less than "
        f"{MIN_WORKER_SPLIT:.0%} of the work"
    )
    return all(not v.startswith("FAIL") for v in verdicts)


def round_order(configs: list[str], rnd: int) -> list[str]:
    """Rotated every other round and reversed every other round, so that no configuration always
    runs first or last, nor always right after the same one (with two: ab, ba, ba, ab, ...)."""
    shift = (rnd // 2) % len(configs)
    order = configs[shift:] + configs[:shift]
    return order[::-1] if rnd % 2 else order


def measure_slice(
    server: Server, rnd: int, args: argparse.Namespace, started: float, seconds: list[float], left: int
) -> list[Run]:
    """measure(), run again once (budget allowing) when other processes took much of the machine
    or one worker did little of the work. Returns every slice run: the last one is kept."""
    tried: list[Run] = []
    for attempt in range(2):
        t0 = time.monotonic()
        run = measure(server, rnd, args)
        tried.append(run)
        seconds.append(time.monotonic() - t0)
        in_budget = time.monotonic() - started + median(seconds) * left < args.budget
        busy = run.others_share > args.max_others
        uneven = run.worker_split < MIN_WORKER_SPLIT
        if not (busy or uneven) or attempt == 1 or not in_budget:
            break
        why = (
            f"other processes used {run.others_share:.0%} of the machine"
            if busy
            else f"one worker did only {run.worker_split:.0%} of the work"
        )
        log(
            f"round {rnd + 1}/{args.rounds} {run.key:<21} {run.rps:8.1f} req/s: discarded, {why}; "
            "running it again"
        )
    return tried


def log_slice(run: Run, rounds: int) -> None:
    load: Any = run.load
    log(
        f"round {run.round + 1}/{rounds} {run.key:<21} {run.rps:8.1f} req/s "
        f"({load.requests} requests, errors {run.errors}, "
        f"CPU {ms_per_request(run.cpu_ticks, load.requests):.3f} ms/req, "
        f"other threads {ms_per_request(run.side_ticks, load.requests):.3f} ms/req, wrk CPU "
        f"{ms_per_request(load.cpu_ticks, load.requests):.3f} ms/req, other processes "
        f"{run.others_share:.0%}, worker split {run.worker_split:.0%})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of load per slice")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per server")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma list of " + ", ".join(KINDS))
    parser.add_argument(
        "--configs", default=",".join(DEFAULT_CONFIGS), help="comma list of " + ", ".join(CONFIGS)
    )
    parser.add_argument(
        "--max-others",
        type=float,
        default=None,
        help="a slice during which other processes used more than this share of the machine is run "
        "again, once, while the budget allows. Default: 0.10, or 0.35 when shielded",
    )
    parser.add_argument(
        "--no-isolate",
        dest="isolate",
        action="store_false",
        help="do not raise the scheduler priority (autogroup nice -20) of gunicorn and wrk",
    )
    parser.add_argument("--budget", type=float, default=600.0, help="seconds the whole run should take")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk (make bench-sampler does it)", file=sys.stderr)
        return 2
    kinds = [k for k in args.kinds.split(",") if k]
    configs = [c for c in args.configs.split(",") if c]
    if any(k not in KINDS for k in kinds) or any(c not in CONFIGS for c in configs):
        parser.error(f"--kinds among {', '.join(KINDS)}; --configs among {', '.join(CONFIGS)}")
    with open("/proc/loadavg") as f:
        loadavg = " ".join(f.read().split()[:3])
    log(
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"load average before the run: {loadavg}"
    )
    if args.isolate:
        why = can_isolate()
        if why is not None:
            log(f"(not shielded from other processes: {why})")
            args.isolate = False
    if args.max_others is None:
        args.max_others = 0.35 if args.isolate else 0.10
    log(
        "gunicorn and wrk run at autogroup nice "
        + (f"{ISOLATION_NICE}, above other processes" if args.isolate else "0, like other processes")
    )
    started = time.monotonic()
    base = tempfile.mkdtemp(prefix="gpi-bench-sampler-")
    runs: list[Run] = []
    written: dict[str, Written] = {}
    retried = 0
    slice_seconds: list[float] = []
    total = args.rounds * len(kinds) * len(configs)
    try:
        for kind in kinds:
            # Every configuration's server runs from the start: a round's slices follow each other
            # within seconds, so a slow stretch of the shared machine lands on all of them alike.
            servers: dict[str, Server] = {}
            served: dict[str, int] = {}
            try:
                for config in configs:
                    server = servers[config] = Server(kind, config, tempfile.mkdtemp(dir=base), args.isolate)
                    server.start()
                for config, server in servers.items():
                    warm = run_wrk(server.url + HEAVY_PATH, args.warmup, CONNECTIONS[kind], args.isolate)
                    served[config] = warm.requests
                    server.settle()
                for rnd in range(args.rounds):
                    for config in round_order(configs, rnd):
                        tried = measure_slice(
                            servers[config], rnd, args, started, slice_seconds, total - len(runs)
                        )
                        run = tried[-1]
                        retried += len(tried) - 1
                        served[config] += sum(r.load.requests for r in tried if r.load)
                        runs.append(run)
                        log_slice(run, args.rounds)
            finally:
                for config, server in servers.items():
                    server.stop()
                    written[f"{kind}/{config}"] = read_reports(server, served.get(config, 0))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    with open("/proc/loadavg") as f:
        loadavg = " ".join(f.read().split()[:3])
    report(runs, written, args, time.monotonic() - started, retried)
    log(f"load average after the run: {loadavg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
