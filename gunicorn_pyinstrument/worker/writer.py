"""Saving reports off the request path: a per-worker thread fed by a bounded queue.

The worker only stops the profiler and enqueues; this thread serializes the session and writes
it atomically. Formats other than the session are left as a job in the spool directory for the
helper process (``helper/``), so rendering never competes with requests for the worker's
CPU or its GIL. A full queue drops the new profile and counts it; it never blocks a request.

When reports are uploaded (``GUNICORN_PYINSTRUMENT_UPLOAD``), the directory is a spool: the
master's helper process measures it and leaves ``FULL_MARK`` in it while it holds more than
``GUNICORN_PYINSTRUMENT_SPOOL_MAX_BYTES`` (the store down for long). This thread then drops new
reports; it looks for the mark at most once a second, so no worker scans the directory.

Every drop is counted, by cause, until a report is written: that report's metadata carries the
count (``dropped``), so each kept report tells what its worker lost since the one before. What is
still counted when the worker exits (drops after its last kept report, say while the spool is
full) is written then, as a record of its own (kind ``dropped``, no files).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..directory import FULL_MARK, JOB_SUFFIX, SPOOL_DIR, dumps
from ..formats import render
from ..logs import ThrottledLog
from ..report import DropFacts, Dropped, Report, Sampling
from ..stores import LocalStore, ensure_directory

if TYPE_CHECKING:
    from pyinstrument.session import Session

FULL_CHECK_SECONDS = 1.0

#: When the first and the last of some drops happened (epoch seconds).
Span = tuple[float, float]


def _joined(a: Span | None, b: Span | None) -> Span | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


class Writer:
    def __init__(
        self, directory: str, file_mode: int, queue_size: int, log: ThrottledLog, bounded: bool = False
    ) -> None:
        self.store = LocalStore(directory, file_mode)
        self.spool = LocalStore(os.path.join(directory, SPOOL_DIR), file_mode)
        self.file_mode = file_mode
        self.log = log
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self.spool_dropped = 0
        #: The directory is an upload spool: obey FULL_MARK.
        self.bounded = bounded
        self._full = False
        self._full_checked = float("-inf")
        self._queue: queue.Queue[tuple[Report, Session] | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        # Drops not yet carried by a written report: taken by the next one (any thread may drop,
        # the writer thread and worker_abort write, hence the lock).
        self._drops_lock = threading.Lock()
        self._pending = Dropped()
        self._pending_span: Span | None = None  # the first and the last of those drops
        self._last_dropped: Report | None = None  # whose worker and label a record of them takes

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
            self._count_drop(report, Dropped(queue_full=1))
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

    def spool_full(self) -> bool:
        """Whether the uploader says the spool is over its bound (looked up at most once a second)."""
        if not self.bounded:
            return False
        now = time.monotonic()
        if now - self._full_checked >= FULL_CHECK_SECONDS:
            self._full_checked = now
            self._full = os.path.exists(os.path.join(self.store.root, FULL_MARK))
        return self._full

    def _write_counted(self, report: Report, session: Session) -> bool:
        if self.spool_full():
            self._count_drop(report, Dropped(spool_full=1))
            self.log.warning(
                "spool-full",
                f"the local spool {self.store.root} is over GUNICORN_PYINSTRUMENT_SPOOL_MAX_BYTES while "
                f"uploads wait for the store: dropped a report ({self.spool_dropped} dropped in this "
                "worker so far)",
            )
            return False
        try:
            self.write(report, session)
            self.written += 1
            return True
        except Exception:
            self.failed += 1
            self.log.error("write", f"could not write report {report.name} to {self.store.root}")
            return False

    # --- drops, counted until a written report carries them ---

    def _count_drop(self, report: Report, drop: Dropped) -> None:
        now = time.time()
        with self._drops_lock:
            self.dropped += drop.queue_full
            self.spool_dropped += drop.spool_full
            self._pending += drop
            self._pending_span = _joined(self._pending_span, (now, now))
            self._last_dropped = report

    def _take_drops(self) -> tuple[Dropped, Span | None]:
        with self._drops_lock:
            taken, span = self._pending, self._pending_span
            self._pending, self._pending_span = Dropped(), None
            return taken, span

    def _give_back(self, taken: Dropped, span: Span | None) -> None:
        """A report that carried drops was not written after all: the next one carries them."""
        with self._drops_lock:
            self._pending += taken
            self._pending_span = _joined(self._pending_span, span)

    def write(self, report: Report, session: Session) -> None:
        data = render(session, "session")
        taken, span = self._take_drops()
        if taken:
            report = dataclasses.replace(report, dropped=report.dropped + taken)
        try:
            self._again_if_removed(lambda: self._write_report(report, data), report.formats)
        except BaseException:
            self._give_back(taken, span)
            raise

    def _again_if_removed(self, write: Callable[[], object], formats: tuple[str, ...] = ()) -> None:
        try:
            write()
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            # The directory (or its spool) was removed under us: make it again (the report
            # directory first, so that it gets its own mode, not a default one as a parent) and
            # write the whole report again, into the new directory.
            ensure_directory(self.store.root, self.file_mode)
            if any(f != "session" for f in formats):
                ensure_directory(self.spool.root, self.file_mode)
            write()

    def write_drops(self) -> bool:
        """The drops no written report carries, as a record of their own (at exit). True when there
        were some and they are written."""
        taken, span = self._take_drops()
        last = self._last_dropped
        if not taken or span is None or last is None:
            return False
        facts = DropFacts(started_at=span[0], duration=span[1] - span[0])
        # Numbered after every report the worker made: each was written, dropped or failed.
        sequence = self.written + self.dropped + self.spool_dropped + self.failed + 1
        record = dataclasses.replace(
            last,
            name=Report.make_name(facts, last.worker, sequence),
            facts=facts,
            formats=(),
            samples=0,
            sampling=Sampling(),
            dropped=taken,
        )
        try:
            self._again_if_removed(lambda: self.store.put(record.metadata_name, dumps(record.metadata({}))))
        except Exception:
            self._give_back(taken, span)
            self.log.error("drops", f"could not record the dropped reports in {self.store.root}")
            return False
        return True

    # --- writing ---

    def _write_report(self, report: Report, data: bytes) -> None:
        """Every file of one report, all into the directory as it is now (``LocalStore.pinned``),
        the metadata record or the helper's job last. When one fails, those already written are
        removed: a report is whole, or absent."""
        session_name = report.filename("session")
        keep_session = "session" in report.formats
        pending = [f for f in report.formats if f != "session"]
        files = {"session": session_name} if keep_session else {}
        written: list[tuple[LocalStore, str]] = []

        def put(store: LocalStore, name: str, content: bytes) -> None:
            store.put(name, content)
            written.append((store, name))

        with contextlib.ExitStack() as stack:
            store = stack.enter_context(self.store.pinned())
            spool = stack.enter_context(self.spool.pinned(store)) if pending else store
            try:
                put(store if keep_session else spool, session_name, data)
                if not pending:
                    put(store, report.metadata_name, dumps(report.metadata(files)))
                    return
                job = {
                    "metadata": report.metadata(files),
                    "pending": pending,
                    "session_in_spool": not keep_session,
                    "file_mode": self.file_mode,
                }
                put(spool, report.name + JOB_SUFFIX, dumps(job))
            except BaseException:
                for where, name in written:
                    with contextlib.suppress(OSError):
                        where.remove(name)
                raise

    def close(self, timeout: float) -> bool:
        """Write everything queued, then stop the thread, then record the drops no written report
        carries. True when the thread finished in time."""
        with self._start_lock:
            self._closed = True
        finished = self._stop_thread(timeout)
        self.write_drops()
        return finished

    def _stop_thread(self, timeout: float) -> bool:
        thread = self._thread
        if thread is None:
            return True
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return False
        thread.join(timeout)
        return not thread.is_alive()
