"""Throughput benchmark: what does the plugin cost a gunicorn app, switched off, sampled and always on?

Starts the same app (bench/app.py) under ``gunicorn -w 2 -k sync`` in several configurations, loads
each with wrk for a fixed time, and alternates the configurations over several rounds in one run, so
that a slow minute of the shared machine does not land on one configuration only::

    none     plain gunicorn, no -c
    off      -c gunicorn_pyinstrument/config.py with GUNICORN_PYINSTRUMENT=0
    rate001  profiling on, SAMPLE_RATE=0.01, FORMATS=session
    session  every request profiled, FORMATS=session
    html     every request profiled, FORMATS=session,html (html rendered by the renderer process)

For each run it also measures the CPU time of the gunicorn master and its workers per request
(utime+stime from /proc), the renderer's CPU separately, and counts the reports written against
the requests served. It prints a table and one PASS/FAIL line per target, and exits 0 unless
something crashed. ``make bench`` runs it; ``--rounds 2 --duration 3`` for a quick look.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "bench")
CONFIG_FILE = os.path.join(ROOT, "gunicorn_pyinstrument", "config.py")
GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")
CLK_TCK = os.sysconf("SC_CLK_TCK")

CONFIGS = ("none", "off", "rate001", "session", "html")
#: Diagnostic only (--experiment-autogroup): html with the renderer's autogroup niced 19 below
#: gunicorn's, as if the renderer's nice 19 counted against the workers.
EXPERIMENT = "html-ag19"
HEAVY_PATH = "/work"
READY_PATH = "/ping"
#: Report files of the heavy endpoint (names are <stamp>_<METHOD>_<path>_<ms>ms_<worker>...).
HEAVY_MARK = "_GET_work_"
RENDERER_MARK = "gunicorn_pyinstrument.helper"

#: Autogroup nice of gunicorn, its renderer and wrk when shielding them from other processes.
ISOLATION_NICE = -20

TARGETS = (
    ("off / none", "off", "none", 0.99),
    ("rate001 / none", "rate001", "none", 0.97),
    ("html / session", "html", "session", 0.95),
)


def log(message: str) -> None:
    print(message, flush=True)


# --- /proc helpers ---


def process_ticks(pids: list[int]) -> dict[int, int]:
    """CPU ticks (utime+stime, every thread) of each process still there."""
    ticks = {}
    for pid in pids:
        stat = proc_stat(pid)
        if stat is not None:
            ticks[pid] = stat[0]
    return ticks


def side_thread_ticks(pids: list[int]) -> dict[tuple[int, int], int]:
    """CPU ticks of each process's threads other than its main one, by (pid, tid)."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in map(int, os.listdir(f"/proc/{pid}/task")):
                stat = proc_stat(pid, tid) if tid != pid else None
                if stat is not None:
                    ticks[(pid, tid)] = stat[0]
    return ticks


def wait_until_idle(ticks: Callable[[], int], timeout: float) -> None:
    """Until ``ticks()`` (CPU ticks of the processes watched) stops growing: two quarter-seconds in
    a row with at most one tick, or ``timeout``."""
    deadline = time.monotonic() + timeout
    before = ticks()
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:
        time.sleep(0.25)
        now = ticks()
        quiet = quiet + 1 if now - before <= 1 else 0
        before = now


def stop_master(proc: subprocess.Popen[bytes], name: str) -> None:
    """SIGTERM a gunicorn master and wait; SIGKILL its process group if it is stuck."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        log(f"  gunicorn ({name}) did not stop in 60 s: killing its process group")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def proc_stat(pid: int, tid: int | None = None) -> tuple[int, int] | None:
    """(utime+stime in clock ticks, ppid) of a process (or one of its threads), None when gone."""
    try:
        with open(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat") as f:
            data = f.read()
    except OSError:
        return None
    fields = data.rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3 of stat(5)); utime and stime are fields 14 and 15.
    return int(fields[11]) + int(fields[12]), int(fields[1])


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wait_for_quiet(limit: float, timeout: float) -> float:
    """Before a run, wait (up to ``timeout`` s) for a half second in which the machine, with nothing
    of ours running, is busy less than ``limit``. Returns the seconds waited."""
    start = time.monotonic()
    while True:
        busy0, total0 = machine_ticks()
        time.sleep(0.5)
        busy1, total1 = machine_ticks()
        if (busy1 - busy0) / max(1, total1 - total0) <= limit or time.monotonic() - start >= timeout:
            return time.monotonic() - start


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    pids: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tasks:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as f:
            pids.update(int(p) for p in f.read().split())
    return sorted(pids)


def autogroup(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/autogroup") as f:
            return f.read().strip()
    except OSError:
        return "?"


def set_autogroup_nice(pid: int, nice: int) -> None:
    """Set the nice value of the scheduler autogroup (the session) ``pid`` belongs to."""
    with open(f"/proc/{pid}/autogroup", "w") as f:
        f.write(str(nice))


def can_isolate() -> str | None:
    """Why the runs cannot be shielded from other processes through autogroups, or None."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            if f.read().strip() != "1":
                return "scheduler autogroups are disabled"
    except OSError:
        return "no scheduler autogroups on this kernel"
    probe = subprocess.Popen(["sleep", "5"], start_new_session=True)
    try:
        set_autogroup_nice(probe.pid, ISOLATION_NICE)
    except OSError as exc:
        return f"cannot raise an autogroup's priority ({exc.strerror})"
    finally:
        probe.kill()
        probe.wait()
    return None


def become_subreaper() -> bool:
    """Orphans (the renderer, once the master has exited) become our children, so we can reap them
    and read their exact CPU time with wait4."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap_orphans() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


# --- wrk ---


@dataclasses.dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    non_2xx: int
    socket_errors: int
    cpu_ticks: int  # wrk's own CPU time
    text: str


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def run_wrk(
    url: str, duration: float, threads: int, connections: int, isolate: bool, extra: tuple[str, ...] = ()
) -> WrkResult:
    """``extra``: more wrk arguments (for example a header)."""
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s", *extra, url]
    with tempfile.TemporaryFile() as outf:
        proc = subprocess.Popen(cmd, stdout=outf, stderr=subprocess.STDOUT, start_new_session=isolate)
        try:
            if isolate:
                set_autogroup_nice(proc.pid, ISOLATION_NICE)
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            raise
        proc.returncode = 0  # reaped above; keep Popen from waiting again
        outf.seek(0)
        out = outf.read().decode("utf-8", "replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"wrk failed:\n{out}")
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m or not rps:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        requests=int(m.group(1)),
        seconds=float(m.group(2)) * _UNITS[m.group(3)],
        rps=float(rps.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        cpu_ticks=round((usage.ru_utime + usage.ru_stime) * CLK_TCK),
        text=out,
    )


# --- one server ---


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config_env(name: str, report_dir: str) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
    if name == "none":
        return [], env
    if name == "off":
        env["GUNICORN_PYINSTRUMENT"] = "0"
        return ["-c", CONFIG_FILE], env
    env.update(
        GUNICORN_PYINSTRUMENT="1",
        GUNICORN_PYINSTRUMENT_DIR=report_dir,
        GUNICORN_PYINSTRUMENT_SAMPLE_RATE="0.01" if name == "rate001" else "1",
        GUNICORN_PYINSTRUMENT_FORMATS="session,html" if name.startswith("html") else "session",
    )
    return ["-c", CONFIG_FILE], env


@dataclasses.dataclass
class Run:
    config: str
    round: int
    warmup: WrkResult | None = None
    load: WrkResult | None = None
    worker_cpu_ticks: int = 0  # master + workers, over the load and the writer's catch-up
    side_thread_ticks: int = 0  # of which the workers' other threads (the writer thread)
    renderer_load_ticks: int = 0  # renderer, over the same span
    renderer_total_ticks: int | None = None  # renderer, whole life (start-up to its exit)
    renderer_info: str = ""
    others_share: float = 0.0  # CPU used by other processes on the machine during the load, 0..1
    meta: int = 0
    sessions: int = 0
    html: int = 0
    jobs_left: int = 0
    backlog: int = 0  # jobs waiting in the spool when the load stopped
    failed_jobs: int = 0
    drain_seconds: float = 0.0  # from SIGTERM to the master until the renderer is done
    log_dropped: list[str] = dataclasses.field(default_factory=list)
    log_problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def served(self) -> int:
        """Requests to the heavy endpoint that wrk saw answered (warm-up and load)."""
        return sum(r.requests for r in (self.warmup, self.load) if r is not None)

    @property
    def rps(self) -> float:
        return self.load.rps if self.load else 0.0


class Server:
    def __init__(self, config: str, workdir: str, experiment: bool, isolate: bool) -> None:
        self.config = config
        self.workdir = workdir
        self.report_dir = os.path.join(workdir, "reports")
        self.log_path = os.path.join(workdir, "gunicorn.log")
        self.port = free_port()
        self.experiment = experiment
        self.isolate = isolate
        self.proc: subprocess.Popen[bytes] | None = None
        self.renderer_pid: int | None = None
        self.renderer_last_ticks: int | None = None
        self.term_sent: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        extra, env = config_env(self.config, self.report_dir)
        cmd = [
            GUNICORN,
            "-w",
            "2",
            "-k",
            "sync",
            "-b",
            f"127.0.0.1:{self.port}",
            "--no-control-socket",
            "--pythonpath",
            BENCH_DIR,
            *extra,
            "app:app",
        ]
        with open(self.log_path, "wb") as logf:
            # Its own session, as a service would have: its own process group (to kill it whole if
            # needed) and its own scheduler autogroup.
            self.proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True
            )
        if self.isolate:
            set_autogroup_nice(self.pid, ISOLATION_NICE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.config}) exited at start-up:\n{self.read_log()}")
            try:
                with urllib.request.urlopen(self.url + READY_PATH, timeout=2) as resp:
                    if resp.status == 200 and len(self.workers()) == 2:
                        break
            except OSError:
                pass
            time.sleep(0.1)
        else:
            raise RuntimeError(f"gunicorn ({self.config}) not ready after 30 s:\n{self.read_log()}")
        if self.config.startswith("html"):
            deadline = time.monotonic() + 10
            while self.renderer_pid is None and time.monotonic() < deadline:
                found = [p for p in children(self.pid) if RENDERER_MARK in cmdline(p)]
                self.renderer_pid = found[0] if found else None
                time.sleep(0.05)
            if self.renderer_pid is None:
                raise RuntimeError(f"no renderer process under the master for {self.config}")
            # The renderer runs in a session (so an autogroup) of its own. Isolated, it gets the same
            # autogroup priority as gunicorn's, as both have by default; the experiment gives it 19
            # more (what nice 19 would mean if it shared gunicorn's autogroup).
            base = ISOLATION_NICE if self.isolate else 0
            if self.experiment:
                set_autogroup_nice(self.renderer_pid, min(19, base + 19))
            elif self.isolate:
                set_autogroup_nice(self.renderer_pid, base)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def workers(self) -> list[int]:
        return [p for p in children(self.pid) if RENDERER_MARK not in cmdline(p)]

    def worker_ticks(self) -> dict[int, int]:
        """CPU ticks of the master and each worker (the renderer excluded)."""
        return process_ticks([self.pid, *self.workers()])

    def side_thread_ticks(self) -> dict[tuple[int, int], int]:
        """CPU ticks of the workers' threads other than the main one (the writer thread; the main
        thread serves the requests)."""
        return side_thread_ticks(self.workers())

    def renderer_ticks(self) -> int | None:
        if self.renderer_pid is None:
            return None
        stat = proc_stat(self.renderer_pid)
        if stat is not None:
            self.renderer_last_ticks = stat[0]
        return self.renderer_last_ticks

    def settle(self, timeout: float = 15.0) -> None:
        """Wait until the workers are idle: the writer threads have caught up with the queue."""
        wait_until_idle(lambda: sum(self.worker_ticks().values()), timeout)

    def stop(self) -> None:
        """SIGTERM the master and wait (on_exit waits up to 10 s for the renderer); kill if stuck."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        self.term_sent = time.monotonic()
        deadline = time.monotonic() + 60
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.renderer_ticks()
            time.sleep(0.1)
        if self.proc.poll() is None:
            log(f"  gunicorn ({self.config}) did not stop in 60 s: killing its process group")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(10)

    def wait_renderer(self, timeout: float) -> tuple[float, int | None]:
        """After the master is gone: poll until the spool has no job and the renderer has exited.
        Returns (seconds waited, renderer's total CPU ticks)."""
        start = time.monotonic()
        total: int | None = None
        while time.monotonic() - start < timeout:
            self.renderer_ticks()
            gone = self.renderer_pid is None or proc_stat(self.renderer_pid) is None
            if self.renderer_pid is not None and not gone:
                total = self._reap_renderer()
                gone = total is not None
            if gone:
                break  # done, or died with jobs left (counted below, never silently)
            time.sleep(0.1)
        else:
            if self.renderer_pid is not None and proc_stat(self.renderer_pid) is not None:
                log(f"  renderer still busy after {timeout:g} s: stopping it (pid {self.renderer_pid})")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.renderer_pid, signal.SIGKILL)
                self._reap_renderer(block=True)
        return time.monotonic() - start, total if total is not None else self.renderer_last_ticks

    def _reap_renderer(self, block: bool = False) -> int | None:
        """Exact CPU ticks of the renderer once it has exited, if it is our child (subreaper)."""
        assert self.renderer_pid is not None
        try:
            pid, _, usage = os.wait4(self.renderer_pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            return None
        if pid == 0:
            return None
        return round((usage.ru_utime + usage.ru_stime) * CLK_TCK)

    def read_log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""


def count(directory: str, suffix: str, mark: str = "") -> int:
    try:
        return sum(1 for n in os.listdir(directory) if n.endswith(suffix) and mark in n)
    except FileNotFoundError:
        return 0


def measure(config: str, round_no: int, args: argparse.Namespace, base: str) -> Run:
    workdir = tempfile.mkdtemp(prefix=f"{config}-", dir=base)
    server = Server(config, workdir, experiment=config == EXPERIMENT, isolate=args.isolate)
    run = Run(config, round_no)
    url = server.url + HEAVY_PATH
    try:
        server.start()
        if server.renderer_pid is not None:
            theirs = autogroup(server.renderer_pid)
            ours = autogroup(server.pid)
            run.renderer_info = f"renderer in autogroup {theirs!r}, gunicorn in {ours!r}"
            if theirs.split()[0] != ours.split()[0]:
                run.renderer_info += (
                    " (a different autogroup: the renderer's own nice value only ranks it against its own "
                    "autogroup, not against the workers)"
                )
        run.warmup = run_wrk(url, args.warmup, args.threads, args.connections, args.isolate)
        server.settle()
        cpu0 = server.worker_ticks()
        side0 = server.side_thread_ticks()
        rend0 = server.renderer_ticks() or 0
        busy0, total0 = machine_ticks()
        run.load = run_wrk(url, args.duration, args.threads, args.connections, args.isolate)
        run.backlog = count(os.path.join(server.report_dir, ".spool"), ".job.json")
        server.settle()
        cpu1 = server.worker_ticks()
        side1 = server.side_thread_ticks()
        rend1 = server.renderer_ticks() or 0
        busy1, total1 = machine_ticks()
        run.worker_cpu_ticks = sum(t - cpu0.get(pid, 0) for pid, t in cpu1.items())
        run.side_thread_ticks = sum(t - side0.get(key, 0) for key, t in side1.items())
        run.renderer_load_ticks = rend1 - rend0
        # Whatever else ran on the machine meanwhile (it is shared): busy time not ours nor wrk's.
        others = (busy1 - busy0) - run.worker_cpu_ticks - run.renderer_load_ticks - run.load.cpu_ticks
        run.others_share = max(0, others) / max(1, total1 - total0)
    finally:
        server.stop()
    if server.renderer_pid is not None:
        _, run.renderer_total_ticks = server.wait_renderer(args.drain_timeout)
        if server.term_sent is not None:
            run.drain_seconds = time.monotonic() - server.term_sent
    reap_orphans()
    reports = server.report_dir
    spool = os.path.join(reports, ".spool")
    run.meta = count(reports, ".meta.json", HEAVY_MARK)
    run.sessions = count(reports, ".pyisession", HEAVY_MARK)
    run.html = count(reports, ".html", HEAVY_MARK)
    run.jobs_left = count(spool, ".job.json")
    run.failed_jobs = count(spool, ".failed")
    text = server.read_log()
    run.log_dropped = [line for line in text.splitlines() if "dropped" in line]
    run.log_problems = [
        line
        for line in text.splitlines()
        if "gunicorn-pyinstrument" in line and ("error" in line.lower() or "could not" in line)
    ]
    shutil.rmtree(workdir, ignore_errors=True)
    return run


# --- the report ---


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def by_config(runs: list[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for run in runs:
        out.setdefault(run.config, []).append(run)
    return out


def per_round_ratio(runs: list[Run], num: str, den: str) -> list[float]:
    rounds: dict[int, dict[str, float]] = {}
    for run in runs:
        rounds.setdefault(run.round, {})[run.config] = run.rps
    return [r[num] / r[den] for _, r in sorted(rounds.items()) if num in r and den in r and r[den] > 0]


def ms_per_request(ticks: int, requests: int) -> float:
    return ticks / CLK_TCK * 1000 / requests if requests else float("nan")


def written_line(run_list: list[Run], config: str, connections: int) -> tuple[str, bool]:
    served = sum(r.served for r in run_list)
    # wrk does not count the requests still in flight when it stops; the server answers them and
    # they are profiled too: up to -c more reports than requests per wrk run (warm-up and load).
    in_flight = connections * sum((r.warmup is not None) + (r.load is not None) for r in run_list)
    meta = sum(r.meta for r in run_list)
    html = sum(r.html for r in run_list)
    sessions = sum(r.sessions for r in run_list)
    left = sum(r.jobs_left for r in run_list)
    failed = sum(r.failed_jobs for r in run_list)
    dropped = sum(len(r.log_dropped) for r in run_list)
    line = (
        f"{config}: {meta} reports (.meta.json) for {served} requests served ({meta / served:.4f}; "
        f"expected {served} to {served + in_flight} with the requests in flight when wrk stops)"
    )
    if config.startswith("html"):
        line += f", {html} .html files, {left} jobs left in the spool, {failed} failed jobs"
    line += f", {sessions} .pyisession files, {dropped} 'dropped' log lines"
    complete = served <= meta <= served + in_flight and left == 0 and failed == 0 and dropped == 0
    complete = complete and sessions == meta
    if config.startswith("html"):
        complete = complete and html == meta
    return line, complete


def report(runs: list[Run], args: argparse.Namespace, elapsed: float, retried: int, waited: float) -> None:
    groups = by_config(runs)
    order = [c for c in (*CONFIGS, EXPERIMENT) if c in groups]
    med = {c: median([r.rps for r in groups[c]]) for c in order}

    def vs_none(c: str) -> str:
        return f"{med[c] / med['none']:.3f}" if "none" in med else "-"

    log("")
    log(
        f"Results: {args.rounds} rounds x {args.duration:g} s per configuration, wrk -t{args.threads} "
        f"-c{args.connections} on GET {HEAVY_PATH}, gunicorn -w 2 -k sync"
    )
    log("")
    head = (
        f"{'config':<10} {'median req/s':>12} {'vs none':>8} {'min':>8} {'max':>8} "
        f"{'CPU ms/req':>10} {'writer':>7} {'renderer':>8} {'errors':>6} {'written/served':>15}"
    )
    log(head)
    log("-" * len(head))
    for c in order:
        rs = groups[c]
        load_reqs = sum(r.load.requests for r in rs if r.load)
        cpu = ms_per_request(sum(r.worker_cpu_ticks for r in rs), load_reqs)
        side = ms_per_request(sum(r.side_thread_ticks for r in rs), load_reqs)
        rend = (
            f"{ms_per_request(sum(r.renderer_load_ticks for r in rs), load_reqs):.3f}"
            if c.startswith("html")
            else "-"
        )
        non2xx = sum((r.load.non_2xx + r.load.socket_errors) if r.load else 0 for r in rs)
        non2xx += sum((r.warmup.non_2xx + r.warmup.socket_errors) if r.warmup else 0 for r in rs)
        written = "-"
        if c not in ("none", "off"):
            written = f"{sum(r.meta for r in rs)}/{sum(r.served for r in rs)}"
        log(
            f"{c:<10} {med[c]:>12.1f} {vs_none(c):>8} {min(r.rps for r in rs):>8.1f} "
            f"{max(r.rps for r in rs):>8.1f} {cpu:>10.3f} {side:>7.3f} {rend:>8} {non2xx:>6} {written:>15}"
        )
    log("")
    log(
        "CPU ms/req: CPU time (utime+stime) of the gunicorn master and workers per request served, over "
        "the load and until the workers are idle again; writer: the part spent in the workers' other "
        "threads (the writer thread); renderer: the renderer process's CPU over the same span, per "
        "request (it is not in CPU ms/req); errors: non-2xx responses and socket errors seen by wrk; "
        "written/served: .meta.json reports of the heavy endpoint for the requests wrk saw answered "
        "(warm-up included)."
    )
    log("")
    log("Per-round requests/s (round: config order as run):")
    for rnd in sorted({r.round for r in runs}):
        in_round = [r for r in runs if r.round == rnd]
        log(
            f"  round {rnd + 1}: "
            + ", ".join(f"{r.config} {r.rps:.1f}" for r in in_round)
            + f"   (other processes: {max(r.others_share for r in in_round):.0%} of the machine at most)"
        )
    log("")
    log(
        "Ratios: throughput (ratio of the medians; each round's own ratio), and what the CPU per "
        "request predicts for a CPU-bound server (gunicorn only; gunicorn and renderer):"
    )
    pairs = [(label, num, den) for label, num, den, _ in TARGETS] + [("session / none", "session", "none")]
    if EXPERIMENT in groups:
        pairs.append((f"{EXPERIMENT} / session", EXPERIMENT, "session"))

    def cpu_per_request(c: str, renderer: bool) -> float:
        rs = groups[c]
        ticks = sum(r.worker_cpu_ticks + (r.renderer_load_ticks if renderer else 0) for r in rs)
        return ms_per_request(ticks, sum(r.load.requests for r in rs if r.load))

    for label, num, den in pairs:
        if num in med and den in med:
            rounds = ", ".join(f"{x:.3f}" for x in per_round_ratio(runs, num, den))
            by_cpu = cpu_per_request(den, False) / cpu_per_request(num, False)
            with_renderer = cpu_per_request(den, True) / cpu_per_request(num, True)
            log(
                f"  {label:<20} {med[num] / med[den]:.3f}   rounds: {rounds}   by CPU: {by_cpu:.3f}; "
                f"{with_renderer:.3f}"
            )
    log("")
    log("Reports written (warm-up and load requests to the heavy endpoint are all profiled):")
    for c in order:
        if c in ("session", "html", EXPERIMENT):
            line, _ = written_line(groups[c], c, args.connections)
            log("  " + line)
        elif c == "rate001":
            rs = groups[c]
            served, meta = sum(r.served for r in rs), sum(r.meta for r in rs)
            log(f"  rate001: {meta} reports for {served} served ({meta / served:.4f}; ~0.01 expected)")
    for c in order:
        for r in groups[c]:
            for line in (r.log_dropped + r.log_problems)[:5]:
                log(f"  log ({c}, round {r.round + 1}): {line}")
    for c in ("html", EXPERIMENT):
        if c in groups:
            rs = groups[c]
            totals = [r.renderer_total_ticks for r in rs if r.renderer_total_ticks is not None]
            rendered = sum(r.html for r in rs if r.renderer_total_ticks is not None)
            log(
                f"  {c}: jobs pending when the load stopped: {', '.join(str(r.backlog) for r in rs)}; "
                "renderer done after SIGTERM to the master in: "
                + ", ".join(f"{r.drain_seconds:.1f} s" for r in rs)
                + (
                    f"; renderer CPU over its whole life {sum(totals) / CLK_TCK:.1f} s for {rendered} html "
                    f"({ms_per_request(sum(totals), rendered):.2f} ms per report)"
                    if totals
                    else ""
                )
            )
            log(f"  {c}: {rs[0].renderer_info}")
    log("")
    for label, num, den, target in TARGETS:
        if num in med and den in med:
            ratio = med[num] / med[den]
            verdict = "PASS" if ratio >= target else "FAIL"
            log(f"{verdict}: {label} = {ratio:.3f} (target >= {target})")
    if "html" in groups:
        line, complete = written_line(groups["html"], "html", args.connections)
        log(f"{'PASS' if complete else 'FAIL'}: every html report written in the end")
        log(f"      {line}")
    log("")
    log(
        f"Run time: {elapsed:.0f} s; {retried} run(s) discarded and run again because other processes "
        f"used more than {args.max_others:.0%} of the machine; {waited:.0f} s spent waiting for a quiet "
        "machine before runs"
    )


def rotations(rounds: int, configs: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    for rnd in range(rounds):
        shift = rnd % len(configs)
        for config in configs[shift:] + configs[:shift]:
            yield rnd, config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per run")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument("--connections", type=int, default=4, help="wrk -c")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument(
        "--configs", default=",".join(CONFIGS), help="comma list, a subset of " + ", ".join(CONFIGS)
    )
    parser.add_argument(
        "--max-others",
        type=float,
        default=None,
        help="a run during which other processes used more than this share of the machine is run "
        "again (the machine is shared), at most --retries times; the last attempt is kept. Default: "
        "0.10, or 0.35 when shielded from other processes (they then only get the idle moments)",
    )
    parser.add_argument("--retries", type=int, default=2)
    parser.add_argument(
        "--no-isolate",
        dest="isolate",
        action="store_false",
        help="do not raise the scheduler priority (autogroup nice -20) of gunicorn, its renderer and "
        "wrk over the other processes of the machine",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=540.0,
        help="seconds the whole run should take: runs are retried, or delayed for a quiet machine, "
        "only while the remaining runs still fit",
    )
    parser.add_argument(
        "--experiment-autogroup",
        action="store_true",
        help=f"diagnostic: add a config {EXPERIMENT!r} (html, with the renderer's scheduler autogroup "
        "set to nice 19 from outside); never counted in the targets",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install -y wrk (make bench does it)", file=sys.stderr)
        return 2
    configs = tuple(c for c in args.configs.split(",") if c)
    if any(c not in CONFIGS for c in configs):
        parser.error(f"--configs: choose among {', '.join(CONFIGS)}")
    configs += (EXPERIMENT,) if args.experiment_autogroup else ()
    log(f"date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, {os.cpu_count()} CPUs")
    if args.isolate:
        why = can_isolate()
        if why is not None:
            log(f"(not shielded from other processes: {why})")
            args.isolate = False
    if args.max_others is None:
        args.max_others = 0.35 if args.isolate else 0.10
    log(
        "gunicorn, its renderer and wrk run at autogroup nice "
        + (f"{ISOLATION_NICE}, above other processes" if args.isolate else "0, like other processes")
    )
    if not become_subreaper():
        log("(could not become a child subreaper: the renderer's CPU after the master exits is sampled)")
    started = time.monotonic()
    base = tempfile.mkdtemp(prefix="gpi-bench-")
    runs: list[Run] = []
    retried = 0
    waited_quiet = 0.0
    try:
        plan = list(rotations(args.rounds, configs))
        run_seconds: list[float] = []
        for index, (rnd, config) in enumerate(plan):
            for attempt in range(args.retries + 1):
                # Waiting and retrying only while the rest of the plan still fits in the budget.
                typical = median(run_seconds) if run_seconds else args.duration + args.warmup + 5
                in_budget = time.monotonic() - started + typical * (len(plan) - index + 1) < args.budget
                if in_budget and not args.isolate:
                    waited_quiet += wait_for_quiet(args.max_others / 2, 10.0)
                t0 = time.monotonic()
                run = measure(config, rnd, args, base)
                run_seconds.append(time.monotonic() - t0)
                if run.others_share <= args.max_others or attempt == args.retries or not in_budget:
                    break
                retried += 1
                log(
                    f"round {rnd + 1}/{args.rounds} {config:<9} {run.rps:8.1f} req/s: discarded, other "
                    f"processes used {run.others_share:.0%} of the machine; running it again"
                )
            runs.append(run)
            extra = ""
            if config not in ("none", "off"):
                extra = f", {run.meta} reports for {run.served} served"
            if config.startswith("html"):
                extra += (
                    f", {run.html} html, renderer CPU during the load "
                    f"{ms_per_request(run.renderer_load_ticks, run.load.requests if run.load else 0):.3f} "
                    f"ms/req, {run.backlog} jobs pending when the load stopped, renderer done "
                    f"{run.drain_seconds:.1f} s after SIGTERM to the master"
                )
            load: Any = run.load
            log(
                f"round {rnd + 1}/{args.rounds} {config:<9} {run.rps:8.1f} req/s "
                f"({load.requests} requests, non-2xx {load.non_2xx}, socket errors {load.socket_errors}, "
                f"CPU {ms_per_request(run.worker_cpu_ticks, load.requests):.3f} ms/req, wrk CPU "
                f"{ms_per_request(load.cpu_ticks, load.requests):.3f} ms/req, other processes "
                f"{run.others_share:.0%} of the machine{extra})"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report(runs, args, time.monotonic() - started, retried, waited_quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
