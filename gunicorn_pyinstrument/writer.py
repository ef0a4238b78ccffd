"""Saving reports off the request path: a per-worker thread fed by a bounded queue.

The worker only stops the profiler and enqueues; this thread serializes the session and writes
it atomically. Formats other than the session are left as a job in the spool directory for the
renderer process (``renderer.py``), so rendering never competes with requests for the worker's
CPU or its GIL. A full queue drops the new profile and counts it; it never blocks a request.
"""

from __future__ import annotations

import errno
import json
import os
import queue
import threading
from typing import TYPE_CHECKING

from .formats import render
from .logs import ThrottledLog
from .report import Report
from .stores import LocalStore, ensure_directory

if TYPE_CHECKING:
    from pyinstrument.session import Session

SPOOL_DIR = ".spool"
JOB_SUFFIX = ".job.json"


def dumps(record: object) -> bytes:
    return json.dumps(record, indent=1, sort_keys=True).encode("utf-8")


class Writer:
    def __init__(self, directory: str, file_mode: int, queue_size: int, log: ThrottledLog) -> None:
        self.store = LocalStore(directory, file_mode)
        self.spool = LocalStore(os.path.join(directory, SPOOL_DIR), file_mode)
        self.file_mode = file_mode
        self.log = log
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[tuple[Report, Session] | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False

    def submit(self, report: Report, session: Session) -> bool:
        """Hand a finished profile over; never blocks. False when it had to be dropped."""
        if self._closed:
            # A request that ends after worker_exit (a pool thread still running at shutdown):
            # no thread is left to take it, so write it here, on its way out.
            return self._write_counted(report, session)
        self._ensure_thread()
        try:
            self._queue.put_nowait((report, session))
        except queue.Full:
            self.dropped += 1
            self.log.warning(
                "queue-full",
                f"writer queue full: dropped a profile ({self.dropped} dropped in this worker so far); "
                "raise GUNICORN_PYINSTRUMENT_QUEUE_SIZE or lower GUNICORN_PYINSTRUMENT_SAMPLE_RATE",
            )
            return False
        return True

    def _ensure_thread(self) -> None:
        # Started on first use, inside the worker: never in the master, never before a fork.
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None and not self._closed:
                thread = threading.Thread(target=self._run, name="gunicorn-pyinstrument-writer", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        closing = False
        while True:
            if closing:
                try:  # after the stop mark, take what raced in behind it, then end
                    item = self._queue.get_nowait()
                except queue.Empty:
                    return
            else:
                item = self._queue.get()
            if item is None:
                closing = True
                continue
            self._write_counted(*item)

    def _write_counted(self, report: Report, session: Session) -> bool:
        try:
            self.write(report, session)
            self.written += 1
            return True
        except Exception:
            self.failed += 1
            self.log.error("write", f"could not write report {report.name} to {self.store.root}")
            return False

    def write(self, report: Report, session: Session) -> None:
        data = render(session, "session")
        session_name = report.filename("session")
        keep_session = "session" in report.formats
        pending = [f for f in report.formats if f != "session"]
        files = {"session": session_name} if keep_session else {}
        if keep_session:
            self._put(self.store, session_name, data)
        else:
            self._put(self.spool, session_name, data)
        if not pending:
            self._put(self.store, report.metadata_name, dumps(report.metadata(files)))
            return
        job = {
            "metadata": report.metadata(files),
            "pending": pending,
            "session_in_spool": not keep_session,
            "file_mode": self.file_mode,
        }
        self._put(self.spool, report.name + JOB_SUFFIX, dumps(job))

    def _put(self, store: LocalStore, name: str, data: bytes) -> None:
        try:
            store.put(name, data)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            # The directory was removed under us: make it again (the report directory first, so
            # that it gets its own mode, not a default one as a parent) and retry once.
            ensure_directory(self.store.root, self.file_mode)
            ensure_directory(store.root, self.file_mode)
            store.put(name, data)

    def close(self, timeout: float) -> bool:
        """Write everything queued, then stop the thread. True when it finished in time."""
        with self._start_lock:
            self._closed = True
        thread = self._thread
        if thread is None:
            return True
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return False
        thread.join(timeout)
        return not thread.is_alive()
