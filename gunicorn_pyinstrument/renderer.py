"""The renderer: a low-priority process that turns spooled sessions into the other formats, and
enforces retention.

Workers save only the compact session (``writer.py``) and leave a job in ``<dir>/.spool``.
This process, started by the master in ``when_ready`` (a fresh interpreter, not a fork, with
``nice 19``), renders each job with pyinstrument's renderers, writes the files atomically and
writes the metadata record last: a ``.meta.json`` in the directory means the report is complete.
Jobs live on disk, so a renderer that dies or a server that stops loses nothing: the next
renderer (or ``python -m gunicorn_pyinstrument.renderer --once DIR``) finishes them.

With ``GUNICORN_PYINSTRUMENT_MAX_REPORTS`` or ``MAX_BYTES`` set, the same process applies retention
(``catalog.py``) about once a second while reports arrive, so workers never scan the directory.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from .catalog import Catalog
from .formats import load_session, render
from .report import METADATA_SUFFIX
from .settings import FORMAT_SUFFIXES
from .stores import LocalStore
from .writer import JOB_SUFFIX, SPOOL_DIR, dumps

FAILED_SUFFIX = ".failed"
POLL_SECONDS = 0.2
RETENTION_SECONDS = 1.0


@dataclass(frozen=True)
class Retention:
    max_reports: int | None = None
    max_bytes: int | None = None

    def __bool__(self) -> bool:
        return self.max_reports is not None or self.max_bytes is not None

    def arguments(self) -> list[str]:
        args = []
        if self.max_reports is not None:
            args += ["--max-reports", str(self.max_reports)]
        if self.max_bytes is not None:
            args += ["--max-bytes", str(self.max_bytes)]
        return args


class Pruner:
    """Applies retention, at most once per RETENTION_SECONDS; never raises."""

    def __init__(self, directory: str, retention: Retention) -> None:
        self.directory = directory
        self.retention = retention
        self._catalog: Catalog | None = None
        self._next = 0.0

    def __call__(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if not self.retention or now < self._next:
            return
        self._next = now + RETENTION_SECONDS
        try:
            if self._catalog is None:
                self._catalog = Catalog(self.directory)
            self._catalog.prune(self.retention.max_reports, self.retention.max_bytes)
        except Exception as exc:
            print(
                f"gunicorn-pyinstrument renderer: cannot apply retention in {self.directory}: {exc!r}",
                file=sys.stderr,
            )
            if self._catalog is not None:
                with contextlib.suppress(Exception):
                    self._catalog.close()
            self._catalog = None


def pending_jobs(directory: str) -> list[str]:
    """Job names, oldest first (names start with a UTC time stamp)."""
    return sorted(LocalStore(os.path.join(directory, SPOOL_DIR)).names(JOB_SUFFIX))


def process_job(directory: str, job_name: str) -> dict[str, Any]:
    spool = LocalStore(os.path.join(directory, SPOOL_DIR))
    job = json.loads(spool.get(job_name))
    meta: dict[str, Any] = job["metadata"]
    mode = int(job.get("file_mode", 0o600))
    store = LocalStore(directory, mode)
    spool.file_mode = mode
    session_name = meta["name"] + FORMAT_SUFFIXES["session"]
    source = spool if job["session_in_spool"] else store
    session = load_session(source.get(session_name))
    files = dict(meta["files"])
    for fmt in job["pending"]:
        name = meta["name"] + FORMAT_SUFFIXES[fmt]
        store.put(name, render(session, fmt))
        files[fmt] = name
    meta["files"] = files
    store.put(meta["name"] + METADATA_SUFFIX, dumps(meta))
    spool.remove(job_name)
    if job["session_in_spool"]:
        spool.remove(session_name)
    return meta


def drain(directory: str, should_stop: Any = None) -> int:
    """Render every pending job; a broken job is set aside (renamed ``.failed``) and named."""
    done = 0
    for job_name in pending_jobs(directory):
        if should_stop is not None and should_stop():
            break
        try:
            process_job(directory, job_name)
            done += 1
        except Exception as exc:
            path = os.path.join(directory, SPOOL_DIR, job_name)
            if isinstance(exc, FileNotFoundError) and not os.path.exists(path):
                continue  # another renderer took it, or the directory went away
            print(f"gunicorn-pyinstrument renderer: cannot render {path}: {exc!r}", file=sys.stderr)
            with contextlib.suppress(OSError):
                os.replace(path, path + FAILED_SUFFIX)
    return done


def lower_priority() -> None:
    """Render with CPU nobody else wants: SCHED_IDLE where the OS has it, and nice 19.

    The renderer stays in the master's session (a new session would get a scheduler autogroup
    of its own on Linux desktops and servers, with as much CPU as all of gunicorn, nice or not).
    """
    with contextlib.suppress(OSError):
        os.nice(19)
    if hasattr(os, "sched_setscheduler") and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def serve(directory: str, parent: int, retention: Retention | None = None) -> None:
    """Render jobs as they come; on SIGTERM, or when the master is gone, finish them and exit."""
    stopping = False

    def on_term(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    lower_priority()
    prune = Pruner(directory, retention or Retention())
    while True:
        drain(directory)
        prune()
        if stopping or os.getppid() != parent:
            drain(directory)
            prune(now=float("inf"))
            return
        time.sleep(POLL_SECONDS)


class RendererProcess:
    """The master's handle on the renderer: start, restart if it died, stop and wait."""

    def __init__(self, directory: str, retention: Retention | None = None) -> None:
        self.directory = directory
        self.retention = retention or Retention()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, once: bool = False) -> None:
        # Its own process group, so a Ctrl-C meant for gunicorn does not cut the final drain short;
        # not its own session (see lower_priority).
        group: dict[str, Any] = (
            {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
        )
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                __name__,
                "--parent",
                str(os.getpid()),
                *(["--once"] if once else []),
                *self.retention.arguments(),
                self.directory,
            ],
            stdin=subprocess.DEVNULL,
            **group,
        )

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def running(self) -> bool:
        # gunicorn's master may reap this child itself; Popen then reports it as exited.
        return self._process is not None and self._process.poll() is None

    def ensure_running(self) -> bool:
        """Restart it if it died; True when it had to be restarted."""
        if self._process is not None and not self.running():
            self.start()
            return True
        return False

    def stop(self, timeout: float) -> bool:
        """Ask it to finish the pending jobs; wait up to ``timeout``. True when it is done.
        If it is not, it goes on alone and exits when the spool is empty. When it is not running
        (it died) but jobs wait, render them now with a one-off renderer."""
        if not self.running():
            if self._process is None or not pending_jobs(self.directory):
                return True
            self.start(once=True)
        else:
            try:
                self._process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
            except ProcessLookupError:
                return True
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return True
            time.sleep(0.05)
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gunicorn_pyinstrument.renderer")
    parser.add_argument("directory")
    parser.add_argument("--once", action="store_true", help="render what is pending, then exit")
    parser.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--max-reports", type=int, default=None, help="retention: keep at most N reports")
    parser.add_argument("--max-bytes", type=int, default=None, help="retention: keep at most N bytes")
    args = parser.parse_args(argv)
    retention = Retention(args.max_reports, args.max_bytes)
    if args.once:
        print(f"rendered {drain(args.directory)} report(s)")
        Pruner(args.directory, retention)()
        return 0
    serve(args.directory, args.parent if args.parent is not None else os.getppid(), retention)
    return 0


if __name__ == "__main__":
    sys.exit(main())
