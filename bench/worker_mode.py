"""Per-worker mode benchmark: does a worker's memory stay flat, and what does profiling cost, per worker type?

Two phases, for each worker type (sync, gthread --threads 4, gevent, asgi, UvicornWorker), each
server ``gunicorn -w 1`` with the same Python-heavy endpoint (bench/app.py for the WSGI workers,
bench/asgi_app.py, a FastAPI app, for the ASGI ones):

throughput  the same server with the plugin off (``-c config.py``, GUNICORN_PYINSTRUMENT=0) and
            in per-worker mode (MODE=worker, FORMATS=session, FLUSH_INTERVAL=60), both started
            once, loaded in alternating rounds with wrk; median requests/s, their ratio and the CPU
            time (from /proc) of the master and worker per request.
memory      every worker type's server in per-worker mode, and (unless --no-memory-off) the same
            with the plugin off, all running at the same time for --minutes (default 10), each
            under its own continuous, rate-limited load (--rate requests/s on --load-connections
            connections). Every 10 s, each worker's RSS (VmRSS in /proc/<pid>/status). Per server:
            RSS at 1 minute and after the warm-up (--warmup-minutes, default 2: two 60-s windows),
            max, at the end, growth, requests served, windows written and how they cover the
            worker's life, distinct stacks and size of a window.

It prints a table per phase and PASS/FAIL lines (memory: growth after the warm-up, at the end and
at most, under --max-growth MB in per-worker mode), and exits 0 unless something crashed. ``make
bench-worker-mode`` runs it (about 14 minutes); ``--minutes 1`` for a quick look. ``--engine
sampler`` measures the sampler engine instead of pyinstrument's; ``--experiment-package DIR`` (a
diagnostic) adds, in the memory phase, per-worker servers importing a patched copy of the package.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import http.client
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from throughput import (
    BENCH_DIR,
    CLK_TCK,
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
    run_wrk,
    set_autogroup_nice,
    stop_master,
    wait_until_idle,
)

HEAVY_PATH = "/work"
READY_PATH = "/ping"
WSGI_APP = "app:app"
ASGI_APP = "asgi_app:app"

#: Worker type: (gunicorn arguments, app).
TYPES: dict[str, tuple[list[str], str]] = {
    "sync": (["-k", "sync"], WSGI_APP),
    "gthread": (["-k", "gthread", "--threads", "4"], WSGI_APP),
    "gevent": (["-k", "gevent"], WSGI_APP),
    "asgi": (["-k", "asgi"], ASGI_APP),
    "uvicorn": (["-k", "uvicorn_worker.UvicornWorker"], ASGI_APP),
}
MB = 1024 * 1024


# --- one server ---


class Server:
    """``gunicorn -w N`` of one worker type, plugin off or in per-worker mode, in its own session."""

    def __init__(self, kind: str, variant: str, base: str, args: argparse.Namespace, isolate: bool) -> None:
        self.kind = kind
        self.variant = variant  # off, worker, or patched (worker mode, the package from --experiment-package)
        self.profiled = variant != "off"
        self.package_dir: str | None = args.experiment_package if variant == "patched" else None
        self.name = f"{kind}/{variant}"
        self.workdir = tempfile.mkdtemp(prefix=f"{kind}-{variant}-", dir=base)
        self.report_dir = os.path.join(self.workdir, "reports")
        self.log_path = os.path.join(self.workdir, "gunicorn.log")
        self.port = free_port()
        self.n_workers = args.workers
        self.flush_interval = args.flush_interval
        self.engine = args.engine
        self.interval = args.interval
        self.isolate = isolate
        self.proc: subprocess.Popen[bytes] | None = None
        self.worker_born: dict[int, float] = {}  # epoch at which each worker started
        self.stopped_at: float | None = None  # epoch at which the master was seen gone

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def launch(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
        if self.profiled:
            env.update(
                GUNICORN_PYINSTRUMENT="1",
                GUNICORN_PYINSTRUMENT_MODE="worker",
                GUNICORN_PYINSTRUMENT_FLUSH_INTERVAL=f"{self.flush_interval:g}",
                GUNICORN_PYINSTRUMENT_FORMATS="session",
                GUNICORN_PYINSTRUMENT_DIR=self.report_dir,
                GUNICORN_PYINSTRUMENT_ENGINE=self.engine,
                GUNICORN_PYINSTRUMENT_INTERVAL=f"{self.interval:g}",
            )
        else:
            env["GUNICORN_PYINSTRUMENT"] = "0"
        config_file = CONFIG_FILE
        if self.package_dir is not None:
            # Python puts PYTHONPATH before the editable install's finder: the copy is imported.
            env["PYTHONPATH"] = os.pathsep.join(p for p in (self.package_dir, env.get("PYTHONPATH")) if p)
            config_file = os.path.join(self.package_dir, "gunicorn_pyinstrument", "config.py")
        worker_args, app = TYPES[self.kind]
        cmd = [
            GUNICORN,
            "-w",
            str(self.n_workers),
            *worker_args,
            "-b",
            f"127.0.0.1:{self.port}",
            "--no-control-socket",
            "--pythonpath",
            BENCH_DIR,
            "-c",
            config_file,
            app,
        ]
        with open(self.log_path, "wb") as logf:
            self.proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True
            )
        if self.isolate:
            set_autogroup_nice(self.pid, ISOLATION_NICE)

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) exited at start-up:\n{self.read_log()}")
            try:
                with urllib.request.urlopen(self.url + READY_PATH, timeout=2) as resp:
                    if resp.status == 200 and len(self.workers()) == self.n_workers:
                        for pid in self.workers():
                            born = process_start(pid)
                            if born is not None:
                                self.worker_born[pid] = born
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn ({self.name}) not ready after {timeout:g} s:\n{self.read_log()}")

    def workers(self) -> list[int]:
        return children(self.pid)

    def cpu_ticks(self) -> int:
        """CPU ticks (utime+stime, every thread) of the master and its workers."""
        return sum(process_ticks([self.pid, *self.workers()]).values())

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until master and workers are idle (CPU time no longer growing)."""
        wait_until_idle(self.cpu_ticks, timeout)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_master(self.proc, self.name)
        self.stopped_at = time.time()

    def read_log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_problems(self) -> list[str]:
        keys = ("error", "could not", "dropped", "traceback", "exception", "worker timeout")
        return [line for line in self.read_log().splitlines() if any(k in line.lower() for k in keys)]


def process_start(pid: int) -> float | None:
    """When a process started (epoch seconds), from /proc/<pid>/stat and the boot time."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as f:
            btime = next(int(line.split()[1]) for line in f if line.startswith("btime"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return btime + start_ticks / CLK_TCK


def memory_status(pid: int) -> dict[str, int] | None:
    """VmRSS, RssAnon, RssFile, VmHWM of a process, in bytes; None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


@dataclasses.dataclass
class Windows:
    count: int = 0
    durations: list[float] = dataclasses.field(default_factory=list)
    session_bytes: list[int] = dataclasses.field(default_factory=list)
    last_stacks: int = 0  # distinct call stacks (frame records) in the last full window
    samples: int = 0
    spans: list[tuple[float, float]] = dataclasses.field(default_factory=list)  # (start, end), epoch

    def coverage(self, born: float | None, died: float | None) -> str:
        """How the windows cover the worker's life: what is left out before, between and after."""
        if not self.spans:
            return "no window"
        spans = sorted(self.spans)
        gaps = [b[0] - a[1] for a, b in itertools.pairwise(spans)]
        text = (
            f"gaps between windows: {sum(g for g in gaps if g > 0):.2f} s in all, "
            f"largest {max(gaps, default=0):.2f} s"
        )
        if born is not None:
            text += f"; first window from {spans[0][0] - born:+.2f} s after the worker started"
        if died is not None:
            text += f"; last window ends {died - spans[-1][1]:.2f} s before the master was seen gone"
        return text


def windows_of(report_dir: str) -> Windows:
    """The worker-window reports written: their .meta.json with kind "worker"."""
    out = Windows()
    metas = sorted(glob.glob(os.path.join(report_dir, "*.meta.json")))
    full: list[str] = []
    for path in metas:
        try:
            with open(path) as f:
                meta = json.load(f)
        except (OSError, ValueError):
            continue
        if meta.get("kind") != "worker":
            continue
        out.count += 1
        out.durations.append(float(meta.get("duration") or 0))
        with contextlib.suppress(TypeError, ValueError):
            out.spans.append((float(meta["start"]), float(meta["end"])))
        out.samples += int(meta.get("samples") or 0)
        session = meta.get("files", {}).get("session")
        if session:
            with contextlib.suppress(OSError):
                out.session_bytes.append(os.path.getsize(os.path.join(report_dir, session)))
                if meta["duration"] >= 0.9 * max(out.durations):
                    full.append(os.path.join(report_dir, session))
    if full:
        with contextlib.suppress(OSError, ValueError), open(full[-1]) as f:
            out.last_stacks = len(json.load(f).get("frame_records", []))
    return out


# --- load: rate-limited HTTP clients (memory phase) ---


class Load:
    """``connections`` threads, each a keep-alive HTTP client that asks for ``path`` at
    ``rate / connections`` requests per second (as fast as the server answers when it cannot keep
    up; no burst to catch up more than a second)."""

    def __init__(self, port: int, rate: float, connections: int) -> None:
        self.port = port
        self.period = connections / rate if rate > 0 else 0.0
        self.ok = 0
        self.bad = 0  # non-200 answers
        self.errors = 0  # connection errors, timeouts
        self.retried = 0  # requests sent again after a reused keep-alive connection was closed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(connections)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(35)

    @property
    def served(self) -> int:
        return self.ok

    def _get(self, conn: http.client.HTTPConnection) -> bool:
        """One request; True when the server keeps the connection open."""
        conn.request("GET", HEAVY_PATH)
        resp = conn.getresponse()
        resp.read()
        with self._lock:
            if resp.status == 200:
                self.ok += 1
            else:
                self.bad += 1
        return not resp.will_close

    def _run(self, index: int) -> None:
        conn: http.client.HTTPConnection | None = None
        next_at = time.monotonic() + self.period * index / max(1, len(self._threads))
        while not self._stop.is_set():
            delay = next_at - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            next_at = max(next_at + self.period, time.monotonic() - 1.0)
            for attempt in (1, 2):
                reused = conn is not None
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    if not self._get(conn):
                        conn.close()
                        conn = None
                    break
                except (OSError, http.client.HTTPException):
                    if conn is not None:
                        conn.close()
                    conn = None
                    if reused and attempt == 1:
                        # The server closed an idle keep-alive connection as we reused it (a race
                        # every HTTP client has): once more on a new connection, as clients do.
                        with self._lock:
                            self.retried += 1
                        continue
                    with self._lock:
                        self.errors += 1
                    self._stop.wait(0.2)
        if conn is not None:
            conn.close()


# --- phase 1: throughput ---


@dataclasses.dataclass
class TRun:
    kind: str
    profiled: bool
    round: int
    load: WrkResult
    cpu_ticks: int
    others_share: float


def load_once(server: Server, args: argparse.Namespace, isolate: bool, rnd: int) -> TRun:
    server.settle()
    cpu0 = server.cpu_ticks()
    busy0, total0 = machine_ticks()
    result = run_wrk(server.url + HEAVY_PATH, args.duration, 1, args.connections, isolate)
    server.settle()
    cpu = server.cpu_ticks() - cpu0
    busy1, total1 = machine_ticks()
    others = (busy1 - busy0) - cpu - result.cpu_ticks
    return TRun(server.kind, server.profiled, rnd, result, cpu, max(0, others) / max(1, total1 - total0))


def throughput_phase(kinds: list[str], args: argparse.Namespace, base: str, isolate: bool) -> list[TRun]:
    runs: list[TRun] = []
    for kind in kinds:
        off = Server(kind, "off", base, args, isolate)
        on = Server(kind, "worker", base, args, isolate)
        try:
            for s in (off, on):
                s.launch()
            for s in (off, on):
                s.wait_ready()
                run_wrk(s.url + HEAVY_PATH, args.warmup, 1, args.connections, isolate)
            for rnd in range(args.rounds):
                for s in (off, on) if rnd % 2 == 0 else (on, off):
                    run = load_once(s, args, isolate, rnd)
                    runs.append(run)
                    log(
                        f"  {kind:<8} round {rnd + 1}/{args.rounds} {'worker' if s.profiled else 'off':<6} "
                        f"{run.load.rps:8.1f} req/s ({run.load.requests} requests, "
                        f"non-2xx {run.load.non_2xx}, "
                        f"socket errors {run.load.socket_errors}, CPU "
                        f"{ms_per_request(run.cpu_ticks, run.load.requests):.3f} ms/req, other processes "
                        f"{run.others_share:.0%} of the machine)"
                    )
        finally:
            for s in (off, on):
                s.stop()
        w = windows_of(on.report_dir)
        problems = off.log_problems() + on.log_problems()
        log(
            f"  {kind:<8} per-worker mode wrote {w.count} window report(s) over the phase"
            + (f"; log: {problems[:3]}" if problems else "")
        )
    return runs


def throughput_report(runs: list[TRun], kinds: list[str], args: argparse.Namespace) -> None:
    log("")
    log(
        f"Throughput: {args.rounds} rounds x {args.duration:g} s per configuration, alternating, wrk -t1 "
        f"-c{args.connections} on GET {HEAVY_PATH}, gunicorn -w {args.workers}; worker = MODE=worker, "
        f"FORMATS=session, FLUSH_INTERVAL={args.flush_interval:g}, ENGINE={args.engine}, "
        f"INTERVAL={args.interval:g}"
    )
    log("")
    head = (
        f"{'type':<8} {'off req/s':>9} {'worker req/s':>12} {'ratio':>6} {'per round':>20} "
        f"{'off CPU ms/req':>14} {'worker CPU ms/req':>17} {'by CPU':>6} {'errors':>6}"
    )
    log(head)
    log("-" * len(head))
    for kind in kinds:
        mine = [r for r in runs if r.kind == kind]
        off = [r for r in mine if not r.profiled]
        on = [r for r in mine if r.profiled]
        if not off or not on:
            continue
        m_off = median([r.load.rps for r in off])
        m_on = median([r.load.rps for r in on])
        rounds = sorted({r.round for r in mine})
        per_round = []
        for rnd in rounds:
            a = [r.load.rps for r in off if r.round == rnd]
            b = [r.load.rps for r in on if r.round == rnd]
            if a and b and a[0] > 0:
                per_round.append(f"{b[0] / a[0]:.3f}")
        cpu_off = ms_per_request(sum(r.cpu_ticks for r in off), sum(r.load.requests for r in off))
        cpu_on = ms_per_request(sum(r.cpu_ticks for r in on), sum(r.load.requests for r in on))
        errors = sum(r.load.non_2xx + r.load.socket_errors for r in mine)
        log(
            f"{kind:<8} {m_off:>9.1f} {m_on:>12.1f} {m_on / m_off:>6.3f} {', '.join(per_round):>20} "
            f"{cpu_off:>14.3f} {cpu_on:>17.3f} {cpu_off / cpu_on:>6.3f} {errors:>6}"
        )
    log("")
    log(
        "ratio: worker req/s over off req/s (medians); per round: each round's own ratio; CPU ms/req: CPU "
        "time (utime+stime, all threads) of the master and worker per request, over the load and until "
        "the worker is idle again; by CPU: off CPU/req over worker CPU/req (the ratio a CPU-bound server "
        "would show); errors: non-2xx responses and socket errors seen by wrk."
    )
    share = [r.others_share for r in runs]
    if share:
        log(f"Other processes used {min(share):.0%} to {max(share):.0%} of the machine during the loads.")


# --- phase 2: memory ---


@dataclasses.dataclass
class Track:
    server: Server
    load: Load
    samples: list[tuple[float, int, dict[str, int]]] = dataclasses.field(default_factory=list)  # t, pid, mem
    cpu0: int = 0
    cpu1: int = 0
    windows: Windows = dataclasses.field(default_factory=Windows)
    restarts: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)

    def rss_at(self, t: float) -> int | None:
        """RSS of the first sample at or after ``t`` seconds (summed over the workers)."""
        for when, total in self.totals():
            if when >= t:
                return total
        return None

    def totals(self) -> list[tuple[float, int]]:
        by_time: dict[float, int] = {}
        for when, _, mem in self.samples:
            by_time[when] = by_time.get(when, 0) + mem["VmRSS"]
        return sorted(by_time.items())


def memory_phase(kinds: list[str], args: argparse.Namespace, base: str) -> tuple[list[Track], float, float]:
    variants = ["worker"]
    variants += ["patched"] if args.experiment_package else []
    variants += ["off"] if args.memory_off else []
    tracks: list[Track] = []
    for kind in kinds:
        for variant in variants:
            server = Server(kind, variant, base, args, isolate=False)
            tracks.append(Track(server, Load(server.port, args.rate, args.load_connections)))
    seconds = args.minutes * 60
    warmup = min(args.warmup_minutes * 60, seconds / 3)
    try:
        for t in tracks:
            t.server.launch()
        for t in tracks:
            t.server.wait_ready()
            t.cpu0 = t.server.cpu_ticks()
        log(
            f"  {len(tracks)} servers up; load {args.rate:g} req/s each on {args.load_connections} "
            f"connections for {seconds / 60:g} min, RSS every {args.sample_every:g} s"
        )
        for t in tracks:
            t.load.start()
        start = time.monotonic()
        known = {id(t): set(t.server.workers()) for t in tracks}
        next_sample = start
        next_line = start + 60
        while True:
            now = time.monotonic()
            elapsed = now - start
            if now >= next_sample:
                for t in tracks:
                    pids = t.server.workers()
                    if set(pids) - known[id(t)]:
                        t.restarts += len(set(pids) - known[id(t)])
                        known[id(t)] |= set(pids)
                    for pid in pids:
                        mem = memory_status(pid)
                        if mem is not None and "VmRSS" in mem:
                            t.samples.append((round(elapsed, 1), pid, mem))
                next_sample += args.sample_every
            if now >= next_line or elapsed >= seconds:
                next_line += 60
                log(
                    f"  {elapsed / 60:4.1f} min: "
                    + ", ".join(
                        f"{t.server.name} {(t.totals()[-1][1] if t.totals() else 0) / MB:.1f} MB "
                        f"{t.load.served} req"
                        for t in tracks
                    )
                )
            if elapsed >= seconds:
                break
            time.sleep(max(0.0, min(next_sample, start + seconds) - time.monotonic()))
        for t in tracks:
            t.load.stop()
            t.cpu1 = t.server.cpu_ticks()
    finally:
        for t in tracks:
            t.load.stop()
        for t in tracks:
            t.server.stop()
    for t in tracks:
        t.windows = windows_of(t.server.report_dir)
        t.problems = t.server.log_problems()
    return tracks, warmup, seconds


def slope(points: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, bytes) points, in MB per 10 minutes."""
    if len(points) < 2:
        return float("nan")
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var * 600 / MB if var else float("nan")


def memory_report(tracks: list[Track], warmup: float, seconds: float, args: argparse.Namespace) -> list[str]:
    log("")
    log(
        f"Memory: all servers at the same time for {seconds / 60:g} min, gunicorn -w {args.workers}, each "
        f"loaded at {args.rate:g} req/s on {args.load_connections} connections (GET {HEAVY_PATH}); worker "
        f"RSS (VmRSS) every {args.sample_every:g} s; warm-up: the first {warmup / 60:.3g} min; worker = "
        f"MODE=worker, FORMATS=session, FLUSH_INTERVAL={args.flush_interval:g}, ENGINE={args.engine}, "
        f"INTERVAL={args.interval:g}"
    )
    log("")
    head = (
        f"{'server':<15} {'1 min':>6} {'warm-up':>7} {'max':>6} {'end':>6} {'growth':>6} {'max-wu':>6} "
        f"{'trend':>6} {'anon+':>6} {'vs off':>6} {'requests':>8} {'req/s':>6} {'CPU ms/req':>10} "
        f"{'errors':>6} {'windows':>7} {'stacks':>6} {'window KB':>9}"
    )
    log(head)
    log("-" * len(head))
    verdicts = []
    off_end = {t.server.kind: t.totals()[-1][1] for t in tracks if t.server.variant == "off" and t.totals()}
    for t in tracks:
        totals = t.totals()
        if not totals:
            log(f"{t.server.name:<15} no sample")
            continue
        at1 = t.rss_at(min(60, seconds / 2)) or totals[0][1]
        wu = t.rss_at(warmup) or totals[0][1]
        after = [(when, v) for when, v in totals if when >= warmup]
        end = totals[-1][1]
        peak = max(v for _, v in after) if after else end
        anon = [(when, mem.get("RssAnon", 0)) for when, _, mem in t.samples]
        anon_wu = next((v for when, v in anon if when >= warmup), anon[0][1])
        anon_growth = (anon[-1][1] - anon_wu) / MB
        vs_off = f"{(end - off_end[t.server.kind]) / MB:+.1f}" if t.server.kind in off_end else "-"
        served = t.load.served
        w = t.windows
        profiled = t.server.profiled
        window_kb = f"{median([b / 1024 for b in w.session_bytes]):.0f}" if w.session_bytes else "-"
        log(
            f"{t.server.name:<15} {at1 / MB:>6.1f} {wu / MB:>7.1f} {peak / MB:>6.1f} {end / MB:>6.1f} "
            f"{(end - wu) / MB:>+6.1f} {(peak - wu) / MB:>+6.1f} {slope(after):>+6.1f} {anon_growth:>+6.1f} "
            f"{vs_off:>6} {served:>8} {served / seconds:>6.1f} "
            f"{ms_per_request(t.cpu1 - t.cpu0, served):>10.3f} {t.load.bad + t.load.errors:>6} "
            f"{w.count if profiled else '-':>7} {w.last_stacks if profiled else '-':>6} "
            f"{window_kb if profiled else '-':>9}"
        )
        if profiled:
            growth, top = (end - wu) / MB, (peak - wu) / MB
            ok = growth < args.max_growth and top < args.max_growth and t.restarts == 0
            verdict = "PASS" if ok else "FAIL"
            if t.server.variant != "worker":
                verdict = f"({verdict}, experiment, not a target)"
            top1 = (max([v for when, v in totals if when >= 60] or [at1]) - at1) / MB
            verdicts.append(
                f"{verdict}: {t.server.name} RSS growth after the {warmup / 60:.3g}-min warm-up: "
                f"{growth:+.1f} MB at the end, {top:+.1f} MB at most (target < {args.max_growth:g} MB); "
                f"from 1 min: {(end - at1) / MB:+.1f} MB at the end, {top1:+.1f} MB at most"
                + (f"; {t.restarts} worker restart(s)" if t.restarts else "")
            )
    log("")
    log(
        "All in MB. 1 min: worker RSS after 1 minute of load; warm-up: at the end of the warm-up; max: "
        "highest sample after the warm-up; growth: end minus warm-up; max-wu: max minus warm-up; trend: "
        "least-squares slope of the samples after the warm-up, MB per 10 minutes; anon+: growth of "
        "RssAnon (the heap) after the warm-up; vs off: end RSS minus the same type's plugin-off server's; "
        "requests: answered 200; CPU ms/req: master and worker CPU per request; windows: window reports "
        "(.meta.json of kind worker; the last one written at exit); stacks: distinct call stacks (frame "
        "records) in the last full window; window KB: median .pyisession size."
    )
    log("")
    log("RSS (MB) per minute:")
    minutes = list(range(0, int(seconds // 60) + 1))
    log(f"  {'server':<15} " + " ".join(f"{m:>6}" for m in minutes))
    for t in tracks:
        cells = []
        for m in minutes:
            v = t.rss_at(min(m * 60, seconds - args.sample_every))
            cells.append(f"{v / MB:>6.1f}" if v else f"{'-':>6}")
        log(f"  {t.server.name:<15} " + " ".join(cells))
    for t in tracks:
        for line in t.problems[:5]:
            log(f"  log ({t.server.name}): {line}")
        if t.server.profiled and t.windows.durations:
            d = t.windows.durations
            born = min(t.server.worker_born.values(), default=None)
            log(
                f"  {t.server.name}: {t.windows.count} windows, durations {min(d):.1f}-{max(d):.1f} s "
                f"(median {statistics.median(d):.1f}), {t.windows.samples} samples; "
                + t.windows.coverage(born, t.server.stopped_at)
            )
    return verdicts


# --- main ---


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--types", default=",".join(TYPES), help="comma list, a subset of " + ", ".join(TYPES)
    )
    parser.add_argument("--phases", default="throughput,memory", help="comma list: throughput, memory")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn -w")
    parser.add_argument(
        "--flush-interval", type=float, default=60.0, help="GUNICORN_PYINSTRUMENT_FLUSH_INTERVAL"
    )
    parser.add_argument(
        "--engine",
        choices=("pyinstrument", "sampler"),
        default="pyinstrument",
        help="GUNICORN_PYINSTRUMENT_ENGINE",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=None,
        help="GUNICORN_PYINSTRUMENT_INTERVAL (default: 0.001 with pyinstrument, 0.01 with the sampler)",
    )
    # throughput
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of wrk load per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of wrk warm-up per server")
    parser.add_argument("--connections", type=int, default=4, help="wrk -c")
    parser.add_argument(
        "--no-isolate",
        dest="isolate",
        action="store_false",
        help="throughput phase: do not raise the scheduler priority (autogroup nice -20) of gunicorn "
        "and wrk over the other processes of the machine",
    )
    # memory
    parser.add_argument("--minutes", type=float, default=10.0, help="memory phase: minutes of load")
    parser.add_argument(
        "--warmup-minutes",
        type=float,
        default=2.0,
        help="memory phase: warm-up, from which growth is measured (default: two 60-s windows)",
    )
    parser.add_argument(
        "--rate", type=float, default=20.0, help="memory phase: requests/s per server (0: max)"
    )
    parser.add_argument(
        "--load-connections", type=int, default=2, help="memory phase: connections per server"
    )
    parser.add_argument(
        "--sample-every", type=float, default=10.0, help="memory phase: seconds between samples"
    )
    parser.add_argument("--max-growth", type=float, default=20.0, help="memory phase: target, MB")
    parser.add_argument(
        "--no-memory-off",
        dest="memory_off",
        action="store_false",
        help="memory phase: do not run the plugin-off servers alongside for comparison",
    )
    parser.add_argument(
        "--experiment-package",
        metavar="DIR",
        help="diagnostic: in the memory phase, also run each type in per-worker mode with the package "
        "imported from DIR/gunicorn_pyinstrument (a patched copy); never counted in the targets",
    )
    args = parser.parse_args(argv)
    if args.interval is None:
        args.interval = 0.01 if args.engine == "sampler" else 0.001
    kinds = [k for k in args.types.split(",") if k]
    phases = [p for p in args.phases.split(",") if p]
    if any(k not in TYPES for k in kinds):
        parser.error(f"--types: choose among {', '.join(TYPES)}")
    if any(p not in ("throughput", "memory") for p in phases):
        parser.error("--phases: throughput, memory")
    if "throughput" in phases and shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk (make bench-worker-mode does it)", file=sys.stderr)
        return 2
    log(f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {os.cpu_count()} CPUs")
    isolate = args.isolate and "throughput" in phases
    if isolate:
        why = can_isolate()
        if why is not None:
            log(f"(not shielded from other processes: {why})")
            isolate = False
    started = time.monotonic()
    base = tempfile.mkdtemp(prefix="gpi-bench-wm-")
    t_runs: list[TRun] = []
    tracks: list[Track] = []
    warmup = seconds = 0.0
    phase_time: dict[str, float] = {}
    try:
        if "throughput" in phases:
            log(
                "Throughput phase: gunicorn and wrk at autogroup nice "
                + (f"{ISOLATION_NICE}, above other processes" if isolate else "0, like other processes")
            )
            t0 = time.monotonic()
            t_runs = throughput_phase(kinds, args, base, isolate)
            phase_time["throughput"] = time.monotonic() - t0
        if "memory" in phases:
            log("Memory phase (normal priority)")
            t0 = time.monotonic()
            tracks, warmup, seconds = memory_phase(kinds, args, base)
            phase_time["memory"] = time.monotonic() - t0
    finally:
        shutil.rmtree(base, ignore_errors=True)
    verdicts: list[str] = []
    if t_runs:
        throughput_report(t_runs, kinds, args)
    if tracks:
        verdicts = memory_report(tracks, warmup, seconds, args)
    log("")
    for line in verdicts:
        log(line)
    if t_runs:
        errors = sum(r.load.non_2xx + r.load.socket_errors for r in t_runs)
        log(f"{'PASS' if errors == 0 else 'FAIL'}: throughput phase answered every request ({errors} errors)")
    if tracks:
        errors = sum(t.load.bad + t.load.errors for t in tracks)
        retried = sum(t.load.retried for t in tracks)
        log(
            f"{'PASS' if errors == 0 else 'FAIL'}: memory phase answered every request ({errors} errors; "
            f"{retried} sent again on a new connection after the server closed a keep-alive one)"
        )
    log("")
    log(
        f"Run time: {time.monotonic() - started:.0f} s ("
        + ", ".join(f"{k} {v:.0f} s" for k, v in phase_time.items())
        + f"); CPU ticks are {1000 / CLK_TCK:g} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
