"""Rendering: a spooled session turned into the other formats, its metadata record written last.

Workers save only the compact session and leave a job in the spool (``directory.py`` describes
both). The helper renders each job with pyinstrument's renderers, writes the files atomically and
the record last. A job that cannot be read is set aside (renamed ``.failed``) and named; when the
directory refuses files (full, read-only) the jobs wait in the spool for a later attempt.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ..directory import FAILED_SUFFIX, FORMAT_SUFFIXES, JOB_SUFFIX, METADATA_SUFFIX, SPOOL_DIR, dumps
from ..formats import load_session, render
from ..logs import PREFIX, ThrottledLog
from ..stores import LocalStore

#: Errors of the directory rather than of a job (a full disk, a read-only directory): the job is
#: kept for a later attempt, RETRY_SECONDS later, rather than set aside as failed.
DIRECTORY_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR}
)
RETRY_SECONDS = 2.0


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
    """What ``ThrottledLog`` writes to, in the helper: gunicorn's stderr, which it shares."""

    def warning(self, message: str, exc_info: bool = False) -> None:
        print(message.replace(PREFIX, "gunicorn-pyinstrument helper: ", 1), file=sys.stderr, flush=True)

    error = warning


_log = ThrottledLog(_Stderr())


class Pause:
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
                Pause.until = time.monotonic() + RETRY_SECONDS
                _log.warning(
                    "directory",
                    f"cannot write reports to {directory}: {exc.strerror}; their jobs wait in the spool",
                )
                break
            print(f"gunicorn-pyinstrument helper: cannot render {path}: {exc!r}", file=sys.stderr)
            with contextlib.suppress(OSError):
                os.replace(path, path + FAILED_SUFFIX)
    return done


def drain_guarded(directory: str, between: Callable[[], None] | None = None) -> None:
    """The serving loop's drain: an unexpected error is said (at most once a minute), and the
    helper goes on; it must not die of a directory that is briefly something else."""
    try:
        drain(directory, between=between)
    except Exception as exc:
        Pause.until = time.monotonic() + RETRY_SECONDS
        _log.warning("drain", f"cannot render the jobs of {directory}: {exc!r}")
