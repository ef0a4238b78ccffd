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

With ``GUNICORN_PYINSTRUMENT_UPLOAD`` set, the same process also uploads complete reports to object
storage and bounds the local spool (``upload.py``): off the request path, and out of the workers.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .catalog import Catalog
from .formats import load_session, render
from .logs import PREFIX, ThrottledLog
from .report import METADATA_SUFFIX
from .settings import FORMAT_SUFFIXES
from .stores import LocalStore
from .writer import JOB_SUFFIX, SPOOL_DIR, dumps

if TYPE_CHECKING:
    from .upload import Uploader

FAILED_SUFFIX = ".failed"
#: Errors of the directory rather than of a job (a full disk, a read-only directory): the job is
#: kept for a later attempt, RETRY_SECONDS later, rather than set aside as failed.
DIRECTORY_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR}
)
RETRY_SECONDS = 2.0
POLL_SECONDS = 0.2
RETENTION_SECONDS = 1.0
ORPHAN_SWEEP_SECONDS = 600.0
#: What the helper spends uploading at shutdown, within the master's wait (hooks.RENDERER_STOP_SECONDS).
UPLOAD_STOP_SECONDS = 8.0


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


@dataclass(frozen=True)
class Upload:
    """Where complete reports go (GUNICORN_PYINSTRUMENT_UPLOAD and its companions)."""

    url: str
    endpoint_url: str | None = None
    spool_max_bytes: int | None = None

    def arguments(self) -> list[str]:
        args = ["--upload", self.url]
        if self.endpoint_url:
            args += ["--s3-endpoint-url", self.endpoint_url]
        if self.spool_max_bytes is not None:
            args += ["--spool-max-bytes", str(self.spool_max_bytes)]
        return args


def make_uploader(directory: str, upload: Upload | None) -> Uploader | None:
    """The uploader, or None (said on stderr) when it cannot be set up: rendering goes on anyway."""
    if upload is None:
        return None
    try:
        from .stores.s3 import S3Store, parse_s3_url
        from .upload import Uploader

        location = parse_s3_url(upload.url)
        return Uploader(directory, S3Store(location, upload.endpoint_url), location, upload.spool_max_bytes)
    except Exception as exc:
        print(f"gunicorn-pyinstrument renderer: cannot upload to {upload.url}: {exc}", file=sys.stderr)
        return None


class Pruner:
    """Applies retention, at most once per RETENTION_SECONDS; never raises."""

    def __init__(self, directory: str, retention: Retention) -> None:
        self.directory = directory
        self.retention = retention
        self._catalog: Catalog | None = None
        self._next = 0.0
        self._next_orphans = 0.0

    def __call__(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if not self.retention or now < self._next:
            return
        self._next = now + RETENTION_SECONDS
        # Orphans (files a killed worker left without a record) are rare and an hour old before
        # they count; looking for them walks the whole directory, so not every second.
        orphans = now >= self._next_orphans
        if orphans:
            self._next_orphans = now + ORPHAN_SWEEP_SECONDS
        try:
            if self._catalog is None:
                self._catalog = Catalog(self.directory)
            limits = self.retention
            self._catalog.prune(limits.max_reports, limits.max_bytes, orphans=orphans)
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
    # Pinned: the files of one report all go to the directory the job was found in, never split
    # with one made again at the same path meanwhile (see LocalStore.pinned).
    with (
        LocalStore(directory).pinned() as store,
        LocalStore(os.path.join(directory, SPOOL_DIR)).pinned(store) as spool,
    ):
        job = json.loads(spool.get(job_name))
        meta: dict[str, Any] = job["metadata"]
        store.file_mode = spool.file_mode = int(job.get("file_mode", 0o600))
        session_name = meta["name"] + FORMAT_SUFFIXES["session"]
        source = spool if job["session_in_spool"] else store
        session = load_session(source.get(session_name))
        files = dict(meta["files"])
        written: list[str] = []
        try:
            for fmt in job["pending"]:
                name = meta["name"] + FORMAT_SUFFIXES[fmt]
                store.put(name, render(session, fmt))
                written.append(name)
                files[fmt] = name
            meta["files"] = files
            store.put(meta["name"] + METADATA_SUFFIX, dumps(meta))
        except BaseException:
            for name in written:  # the job stays: no file of a report without its record
                with contextlib.suppress(OSError):
                    store.remove(name)
            raise
        spool.remove(job_name)
        if job["session_in_spool"]:
            spool.remove(session_name)
    return meta


class _Stderr:
    """What ``ThrottledLog`` writes to, in the renderer: gunicorn's stderr, which it shares."""

    def warning(self, message: str, exc_info: bool = False) -> None:
        print(message.replace(PREFIX, "gunicorn-pyinstrument renderer: ", 1), file=sys.stderr, flush=True)

    error = warning


_log = ThrottledLog(_Stderr())


class _Pause:
    """Until when the serving loop leaves the jobs alone, after the directory refused a file."""

    until = 0.0


def drain(directory: str, should_stop: Any = None, between: Callable[[], None] | None = None) -> int:
    """Render every pending job; a broken job is set aside (renamed ``.failed``) and named. When the
    directory refuses the files (full, read-only), the jobs stay in the spool for a later attempt,
    and that is said at most once a minute. ``between`` runs after each job (retention, which
    must not wait for a long backlog to be rendered)."""
    done = 0
    for job_name in pending_jobs(directory):
        if should_stop is not None and should_stop():
            break
        try:
            process_job(directory, job_name)
            done += 1
            if between is not None:
                between()
        except Exception as exc:
            path = os.path.join(directory, SPOOL_DIR, job_name)
            if isinstance(exc, FileNotFoundError) and not os.path.exists(path):
                continue  # another renderer took it, or the directory went away
            if isinstance(exc, OSError) and exc.errno in DIRECTORY_ERRNOS:
                _Pause.until = time.monotonic() + RETRY_SECONDS
                _log.warning(
                    "directory",
                    f"cannot write reports to {directory}: {exc.strerror}; their jobs wait in the spool",
                )
                break
            print(f"gunicorn-pyinstrument renderer: cannot render {path}: {exc!r}", file=sys.stderr)
            with contextlib.suppress(OSError):
                os.replace(path, path + FAILED_SUFFIX)
    return done


def _drain_guarded(directory: str, between: Callable[[], None] | None = None) -> None:
    """The serving loop's drain: an unexpected error is said (at most once a minute), and the
    renderer goes on; it must not die of a directory that is briefly something else."""
    try:
        drain(directory, between=between)
    except Exception as exc:
        _Pause.until = time.monotonic() + RETRY_SECONDS
        _log.warning("drain", f"cannot render the jobs of {directory}: {exc!r}")


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


def serve(
    directory: str, parent: int, retention: Retention | None = None, upload: Upload | None = None
) -> None:
    """Render jobs as they come (and upload complete reports); on SIGTERM, or when the master is
    gone, finish them (uploads for at most UPLOAD_STOP_SECONDS) and exit."""
    stopping = False

    def on_term(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    lower_priority()
    prune = Pruner(directory, retention or Retention())
    uploader = make_uploader(directory, upload)
    while True:
        if time.monotonic() >= _Pause.until:
            _drain_guarded(directory, between=prune)
        prune()
        if uploader is not None:
            uploader.step()
        if stopping or os.getppid() != parent:
            _drain_guarded(directory)
            prune(now=float("inf"))
            if uploader is not None:
                uploader.finish(UPLOAD_STOP_SECONDS)
            return
        time.sleep(POLL_SECONDS)


class RendererProcess:
    """The master's handle on the renderer: start, restart if it died, stop and wait."""

    def __init__(
        self, directory: str, retention: Retention | None = None, upload: Upload | None = None
    ) -> None:
        self.directory = directory
        self.retention = retention or Retention()
        self.upload = upload
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
                *(self.upload.arguments() if self.upload is not None else []),
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

    def _pending_uploads(self) -> bool:
        if self.upload is None:
            return False
        from .upload import pending_reports

        return bool(pending_reports(self.directory))

    def stop(self, timeout: float) -> bool:
        """Ask it to finish the pending jobs; wait up to ``timeout``. True when it is done.
        If it is not, it goes on alone and exits when the spool is empty. When it is not running
        (it died) but jobs wait, render them now with a one-off renderer."""
        if not self.running():
            if self._process is None or not (pending_jobs(self.directory) or self._pending_uploads()):
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
    parser.add_argument("--upload", metavar="URL", default=None, help="upload complete reports to s3://...")
    parser.add_argument("--s3-endpoint-url", metavar="URL", default=None, help="an S3-compatible store")
    parser.add_argument("--spool-max-bytes", type=int, default=None, help="bound of the local spool")
    args = parser.parse_args(argv)
    retention = Retention(args.max_reports, args.max_bytes)
    upload = Upload(args.upload, args.s3_endpoint_url, args.spool_max_bytes) if args.upload else None
    if args.once:
        print(f"rendered {drain(args.directory)} report(s)")
        Pruner(args.directory, retention)()
        uploader = make_uploader(args.directory, upload)
        if uploader is not None:
            uploader.finish(UPLOAD_STOP_SECONDS)
            print(f"uploaded {uploader.uploaded} report(s)")
        return 0
    serve(args.directory, args.parent if args.parent is not None else os.getppid(), retention, upload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
