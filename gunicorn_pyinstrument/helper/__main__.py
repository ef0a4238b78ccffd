"""The helper process: ``python -m gunicorn_pyinstrument.helper DIR``.

Started by the master in ``when_ready`` (``process.py``): a fresh interpreter, not a fork, at the
lowest CPU priority. It renders spooled jobs (``rendering.py``), applies retention
(``retention.py``) and uploads complete reports (``upload.py``), off the request path and out of
the workers. Jobs and reports live on disk, so a helper that dies or a server that stops loses
nothing: the next helper, or ``python -m gunicorn_pyinstrument.helper --once DIR``, finishes them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from typing import Any

from .lock import hold
from .rendering import Pause, drain, drain_guarded
from .retention import Pruner, Retention
from .upload import UPLOAD_STOP_SECONDS, Upload, make_uploader

POLL_SECONDS = 0.2


def lower_priority() -> None:
    """Render with CPU nobody else wants: SCHED_IDLE where the OS has it, and nice 19.

    The helper stays in the master's session (a new session would get a scheduler autogroup
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
        if time.monotonic() >= Pause.until:
            drain_guarded(directory, between=prune)
        prune()
        if uploader is not None:
            uploader.step()
        if stopping or os.getppid() != parent:
            drain_guarded(directory)
            prune(now=float("inf"))
            if uploader is not None:
                uploader.finish(UPLOAD_STOP_SECONDS)
            return
        time.sleep(POLL_SECONDS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gunicorn_pyinstrument.helper")
    parser.add_argument("directory")
    parser.add_argument("--once", action="store_true", help="render what is pending, then exit")
    parser.add_argument("--parent", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--exclusive", action="store_true", help="exit at once if another helper serves the directory"
    )
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
    # Held until this process exits: the kernel lets it go then, however it ends.
    lock = hold(args.directory) if args.exclusive else None
    if args.exclusive and lock is None:
        return 0  # another helper serves the directory
    serve(args.directory, args.parent if args.parent is not None else os.getppid(), retention, upload)
    return 0


if __name__ == "__main__":
    sys.exit(main())
