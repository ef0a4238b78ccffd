"""A gunicorn server of one configuration: started, frozen, thawed and stopped by pid.

``gunicorn -w N <worker args> -b 127.0.0.1:<free port> [--no-control-socket] --pythonpath bench
-c gunicorn_pyinstrument/config.py <app>`` (no ``-c`` for plain gunicorn) with the configuration's
``GUNICORN_PYINSTRUMENT_*`` variables, in a session of its own (its own process group and scheduler
autogroup), its reports and log in a directory of its own.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping, Sequence

import gunicorn

from . import ROOT, shield, ticks
from .table import log

BENCH_DIR = os.path.join(ROOT, "bench")
CONFIG_FILE = os.path.join(ROOT, "gunicorn_pyinstrument", "config.py")
GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")
READY_PATH = "/ping"
#: In the command line of the master's helper process (renders, prunes, uploads).
HELPER_MARK = "gunicorn_pyinstrument.helper"
#: After a longer freeze the workers get a moment to send gunicorn's heartbeat before the master
#: runs (it kills a worker silent for --timeout, 30 s; uvicorn's worker sends it once a second).
LONG_FREEZE = 10.0
HEARTBEAT_GRACE = 1.1
#: What a line of gunicorn's log that says something went wrong has in it (any case).
PROBLEMS = ("error", "could not", "dropped", "traceback", "exception", "worker timeout")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def become_subreaper() -> bool:
    """Orphans (a helper whose master has exited) become this process's children: their exact CPU
    time comes with wait4."""
    with contextlib.suppress(OSError, AttributeError):
        return bool(ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER
    return False


def reap_orphans() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


class Server:
    """``settings``: the ``GUNICORN_PYINSTRUMENT_<NAME>`` values of a profiling configuration (its
    reports go to the server's directory), or None for the plugin off (``GUNICORN_PYINSTRUMENT=0``);
    ``plugin=False`` runs plain gunicorn."""

    def __init__(
        self,
        name: str,
        base: str,
        settings: Mapping[str, str] | None = None,
        *,
        plugin: bool = True,
        workers: int = 2,
        worker_args: Sequence[str] = ("-k", "sync"),
        app: str = "app:app",
        isolate: bool = False,
    ) -> None:
        self.name = name
        self.workdir = tempfile.mkdtemp(prefix=re.sub(r"\W", "-", name) + "-", dir=base)
        self.report_dir = os.path.join(self.workdir, "reports")
        self.log_path = os.path.join(self.workdir, "gunicorn.log")
        self.settings = settings
        self.plugin = plugin
        self.n_workers = workers
        self.worker_args = list(worker_args)
        self.app = app
        self.isolate = isolate
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped_at: float | None = None  # epoch at which the master was seen gone
        self.frozen: list[int] = []  # stopped by freeze(), the master first
        self.frozen_at = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self) -> list[str]:
        cmd = [GUNICORN, "-w", str(self.n_workers), *self.worker_args, "-b", f"127.0.0.1:{self.port}"]
        if gunicorn.version_info >= (25, 1):
            cmd.append("--no-control-socket")  # earlier versions have no control socket, nor the flag
        return [*cmd, "--pythonpath", BENCH_DIR, *(["-c", CONFIG_FILE] if self.plugin else []), self.app]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
        if self.plugin and self.settings is None:
            env["GUNICORN_PYINSTRUMENT"] = "0"
        elif self.settings is not None:
            env.update(GUNICORN_PYINSTRUMENT="1", GUNICORN_PYINSTRUMENT_DIR=self.report_dir)
            env.update({f"GUNICORN_PYINSTRUMENT_{k}": v for k, v in self.settings.items()})
        return env

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start gunicorn, not waiting for it: servers start side by side, then wait_ready()."""
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=self.environment(),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if self.isolate:
            shield.set_nice(self.pid)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until /ping answers and every worker is up."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn ({self.name}) exited at start-up:\n{self.read_log()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + READY_PATH, timeout=2) as r:
                if r.status == 200 and len(self.workers()) == self.n_workers:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn ({self.name}) not ready after {timeout:g} s:\n{self.read_log()}")

    def workers(self) -> list[int]:
        return [p for p in ticks.children(self.pid) if HELPER_MARK not in ticks.cmdline(p)]

    def helper(self) -> int | None:
        return next((p for p in ticks.children(self.pid) if HELPER_MARK in ticks.cmdline(p)), None)

    def process_ticks(self) -> dict[int, int]:
        """CPU ticks of the master and of each worker (not the helper)."""
        return ticks.tree_ticks([self.pid, *self.workers()])

    def thread_ticks(self) -> dict[tuple[int, int], int]:
        """CPU ticks of the workers' threads other than the main one (a sync worker's writer and
        sampler threads; a gthread worker's request threads too)."""
        return ticks.side_thread_ticks(self.workers())

    def settle(self, timeout: float = 15.0) -> None:
        """Until master and workers are idle: the writer threads have caught up."""
        ticks.wait_until_idle(lambda: sum(self.process_ticks().values()), timeout)

    def freeze(self) -> None:
        """SIGSTOP the master, then (once it can fork no more) every process under it."""
        os.kill(self.pid, signal.SIGSTOP)
        _wait_stopped([self.pid])
        below = ticks.descendants(self.pid)
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        _wait_stopped(below)
        self.frozen, self.frozen_at = [self.pid, *below], time.monotonic()

    def thaw(self) -> None:
        """SIGCONT what freeze() stopped, the master last: after a long freeze, the workers send
        gunicorn's heartbeat before the master looks at it."""
        if not self.frozen:
            return
        master, *below = self.frozen
        for pid in below:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        if time.monotonic() - self.frozen_at > LONG_FREEZE:
            thawed = time.monotonic()
            # An idle sync worker's select() resumes with the time it had left (up to --timeout/2):
            # SIGWINCH, which gunicorn's workers ignore, cuts it short, and the heartbeat goes out.
            for pid in self.workers():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGWINCH)
            ticks.wait_until_idle(lambda: sum(ticks.tree_ticks(below).values()), 15.0)
            time.sleep(max(0.0, thawed + HEARTBEAT_GRACE - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, signal.SIGCONT)
        self.frozen = []

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the master (thawed first) and wait; SIGKILL its process group if it is stuck."""
        self.thaw()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log(f"  gunicorn ({self.name}) did not stop in {timeout:g} s: killing its process group")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.stopped_at = time.time()

    def stop_with_helper(self, helper: int, timeout: float) -> tuple[float, int | None]:
        """Stop the server and wait until its helper has exited (killed after ``timeout`` s): the
        seconds from SIGTERM to the master until then, and the helper's CPU ticks over its life
        (exact with become_subreaper(), else the last seen)."""
        assert self.proc is not None
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        last = ticks.cpu_ticks(helper)
        while (now := ticks.cpu_ticks(helper)) is not None:
            last = now
            if time.monotonic() - start > timeout:
                log(f"  helper still busy after {timeout:g} s: killing it (pid {helper})")
                os.kill(helper, signal.SIGKILL)
                break
            if self.proc.poll() is not None:  # the helper is an orphan now, and this process's child
                with contextlib.suppress(ChildProcessError):
                    pid, _, usage = os.wait4(helper, os.WNOHANG)
                    if pid:
                        last = round((usage.ru_utime + usage.ru_stime) * ticks.CLK_TCK)
                        break
            time.sleep(0.1)
        drained = time.monotonic() - start
        self.stop()
        reap_orphans()
        return drained, last

    def read_log(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def problems(self) -> list[str]:
        """The lines of gunicorn's log that say something went wrong."""
        return [line for line in self.read_log().splitlines() if any(w in line.lower() for w in PROBLEMS)]


def _wait_stopped(pids: list[int], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    for pid in pids:
        while not ticks.stopped(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
