"""One helper per directory, when the middleware starts them: the lock file a helper holds.

Under gunicorn the master starts the one helper. The middleware runs under servers with no such
process (``middleware.py``), so each of their processes may start one; a helper started with
``--exclusive`` serves its directory only while it holds an exclusive ``flock`` on
``DIR/.helper.lock``, and exits at once when another helper holds it. The kernel lets the lock go
when the helper exits, however it exits, so a stale lock file never blocks the next one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from ..directory import HELPER_LOCK


def hold(directory: str) -> int | None:
    """Take the directory's helper lock for this process; the open descriptor that holds it (kept
    open for as long as the lock is held), or None when another process holds it."""
    fd = os.open(os.path.join(directory, HELPER_LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def held(directory: str) -> bool:
    """Whether a helper serves the directory now (a look, not a claim: the lock is let go at once)."""
    fd = hold(directory)
    if fd is None:
        return True
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
    return False
