"""Moving complete reports from the local directory to object storage (``GUNICORN_PYINSTRUMENT_UPLOAD``).

The :class:`Uploader` runs in the master's low-priority helper process (``helper/``), never in
a worker: boto3's import, threads and connection pools stay out of every worker (and away from
gevent's patching), and no request ever waits for the network. A report is uploaded once it is
complete (its ``.meta.json``, written last, exists): its files first, its metadata record last, so
a reader of the bucket only ever sees complete reports; then the local copies are removed, the
record first, as retention does.

When the store cannot be reached, the reports wait in the directory, which becomes a spool, and
uploads are retried with a growing delay (one log line per minute at most). The spool is bounded by
``GUNICORN_PYINSTRUMENT_SPOOL_MAX_BYTES``: while the directory holds more, the uploader leaves a mark
file that the workers' writer threads obey by dropping new reports (``writer.py``), so a store that
is down for long never fills the disk, and nothing already spooled is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..directory import FAILED_SUFFIX, FULL_MARK, METADATA_SUFFIX, SPOOL_DIR
from ..inputs import S3Location
from ..stores.local import LocalStore, check_name
from ..stores.s3 import StoreError, object_key
from .retention import ORPHAN_SWEEP_SECONDS

#: What the helper spends uploading at shutdown, within the master's wait (hooks.HELPER_STOP_SECONDS).
UPLOAD_STOP_SECONDS = 8.0
#: At most this long uploading per turn of the helper's loop, so that rendering goes on too.
UPLOAD_SLICE_SECONDS = 2.0
SPOOL_CHECK_SECONDS = 1.0
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
LOG_INTERVAL_SECONDS = 60.0


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


class Store(Protocol):
    def put(self, key: str, data: bytes) -> None: ...


def say(message: str) -> None:
    """The helper's stderr is gunicorn's."""
    print(f"gunicorn-pyinstrument uploader: {message}", file=sys.stderr, flush=True)


def spool_bytes(directory: str) -> int:
    """Bytes held by the files of the directory and of its spool (reports waiting to be rendered)."""
    total = 0
    for root in (directory, os.path.join(directory, SPOOL_DIR)):
        try:
            entries = os.scandir(root)
        except OSError:
            continue
        with entries:
            for entry in entries:
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
    return total


def pending_reports(directory: str) -> list[str]:
    """Names of the complete reports in the directory, oldest first (names start with the time)."""
    return sorted(n[: -len(METADATA_SUFFIX)] for n in LocalStore(directory).names(METADATA_SUFFIX))


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


class Uploader:
    """Uploads the complete reports of ``directory`` to ``store``; see the module's doc.

    :meth:`step` and :meth:`finish` never raise: they are called from the helper's loop.
    """

    def __init__(
        self,
        directory: str,
        store: Store,
        location: S3Location,
        spool_max_bytes: int | None = None,
        *,
        keep: bool = False,
        log: Callable[[str], None] = say,
    ) -> None:
        self.directory = directory
        self.store = store
        self.location = location
        self.spool_max_bytes = spool_max_bytes
        self.keep = keep
        self.log = log
        self.local = LocalStore(directory)
        self.uploaded = 0
        self._failures = 0
        self._retry_at = float("-inf")
        self._down_since: float | None = None
        self._next_log = float("-inf")
        self._next_check = float("-inf")
        self._full = False
        self._next_sweep = time.monotonic() + ORPHAN_SWEEP_SECONDS

    # --- one report ---

    def upload_report(self, name: str) -> bool:
        """Upload one complete report (files, then record), then remove the local copies unless
        ``keep``. False when there was nothing to do. Raises StoreError when the store fails."""
        meta_name = name + METADATA_SUFFIX
        try:
            raw = self.local.get(meta_name)
        except FileNotFoundError:
            return False  # another uploader (a previous server's helper) took it
        try:
            record = json.loads(raw)
            if not isinstance(record, dict) or record.get("name") != name:
                raise ValueError("not the metadata record of this report")
            files = [check_name(str(f)) for f in (record.get("files") or {}).values()]
        except (ValueError, TypeError, AttributeError) as exc:
            self._set_aside(meta_name, exc)
            return False
        sent = []
        for filename in files:
            try:
                data = self.local.get(filename)
            except FileNotFoundError:
                if not os.path.exists(self.local.path(meta_name)):
                    return False  # moved by another uploader meanwhile
                self.log(f"{filename} is missing; uploading the rest of report {name}")
                continue
            self.store.put(object_key(self.location, record, filename), data)
            sent.append(filename)
        # The record last: whoever lists the bucket sees the report only once all of it is there.
        self.store.put(object_key(self.location, record, meta_name), raw)
        if not self.keep:
            self.local.remove(meta_name)
            for filename in sent:
                self.local.remove(filename)
        self.uploaded += 1
        return True

    def _set_aside(self, meta_name: str, exc: BaseException) -> None:
        path = self.local.path(meta_name)
        self.log(f"cannot read {path} ({exc}); renamed it {meta_name + FAILED_SUFFIX}, not uploaded")
        with contextlib.suppress(OSError):
            os.replace(path, path + FAILED_SUFFIX)

    def upload_all(self, deadline: float | None = None) -> int:
        """Upload the pending reports, oldest first, until done or ``deadline`` (monotonic).
        Raises StoreError when the store fails."""
        done = 0
        for name in pending_reports(self.directory):
            if deadline is not None and time.monotonic() >= deadline:
                break
            if self.upload_report(name):
                done += 1
        return done

    # --- in the helper's loop ---

    def step(self, now: float | None = None, budget: float = UPLOAD_SLICE_SECONDS) -> int:
        """Check the spool's size, and upload for at most ``budget`` seconds unless the store failed
        recently. Returns how many reports were uploaded."""
        now = time.monotonic() if now is None else now
        self._guarded(self.check_spool, now)
        self._guarded(self._sweep, now)
        if now < self._retry_at:
            return 0
        before = self.uploaded
        try:
            self.upload_all(deadline=time.monotonic() + budget)
        except Exception as exc:
            self._failed(exc, now)
        else:
            if self.uploaded > before:
                self._recovered(now)
        return self.uploaded - before

    def finish(self, timeout: float) -> bool:
        """On shutdown: upload what is left within ``timeout`` seconds, retrying every half second a
        store that fails now (not one that was failing already). True when nothing is left; what is
        left waits in the directory for the next start."""
        deadline = time.monotonic() + timeout
        while True:
            already_down = self._down_since is not None
            try:
                self.upload_all(deadline)
            except Exception as exc:
                self._failed(exc, time.monotonic())
                # A store that was already failing is not waited for: the shutdown stays quick.
                if not already_down and time.monotonic() + 0.5 < deadline:
                    time.sleep(0.5)
                    continue
            left = self._guarded(pending_reports, self.directory) or []
            if left:
                self.log(
                    f"{len(left)} report(s) not uploaded yet stay in {self.directory}; the next start "
                    "uploads them (or: gunicorn-pyinstrument upload "
                    f"--dir {self.directory} --to {self.location})"
                )
            self._guarded(self.check_spool, time.monotonic(), True)
            return not left

    def check_spool(self, now: float, force: bool = False) -> None:
        """Leave FULL_MARK in the directory while it holds SPOOL_MAX_BYTES or more; looked at at
        most once a second unless ``force``."""
        if self.spool_max_bytes is None or (now < self._next_check and not force):
            return
        self._next_check = now + SPOOL_CHECK_SECONDS
        size = spool_bytes(self.directory)
        full = size >= self.spool_max_bytes
        mark = os.path.join(self.directory, FULL_MARK)
        if full and not os.path.exists(mark):
            os.close(os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            self.log(
                f"the local spool {self.directory} holds {_mb(size)}, over "
                f"GUNICORN_PYINSTRUMENT_SPOOL_MAX_BYTES ({_mb(self.spool_max_bytes)}): workers drop new "
                "reports until uploads catch up"
            )
        elif not full and os.path.exists(mark):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(mark)
            if self._full:
                self.log(f"the local spool is under its bound again ({_mb(size)}): new reports are kept")
        self._full = full

    def _sweep(self, now: float) -> None:
        """Remove report files left without a record for over an hour (a worker killed between a
        report's session and its record): they would count against the spool's bound forever."""
        if now < self._next_sweep:
            return
        self._next_sweep = now + ORPHAN_SWEEP_SECONDS
        from ..catalog import Catalog

        with Catalog(self.directory) as cat:
            cat.prune(None, None)

    def _failed(self, exc: BaseException, now: float) -> None:
        self._failures += 1
        delay = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** min(self._failures - 1, 16))
        self._retry_at = now + delay
        if self._down_since is None:
            self._down_since = now
        if now < self._next_log:
            return
        self._next_log = now + LOG_INTERVAL_SECONDS
        reason = str(exc) if isinstance(exc, StoreError) else f"{type(exc).__name__}: {exc}"
        waiting = self._guarded(pending_reports, self.directory) or []
        size = self._guarded(spool_bytes, self.directory) or 0
        self.log(
            f"{reason}; {len(waiting)} report(s), {_mb(size)} wait in {self.directory}; "
            f"retrying in {delay:g}s (then at most every {BACKOFF_MAX_SECONDS:g}s)"
        )

    def _recovered(self, now: float) -> None:
        if self._down_since is not None:
            self.log(f"uploading to {self.location} again, after {now - self._down_since:.0f}s of failures")
        self._failures = 0
        self._down_since = None
        self._next_log = float("-inf")

    def _guarded(self, func: Callable[..., Any], *args: Any) -> Any:
        try:
            return func(*args)
        except Exception as exc:
            self.log(f"error in {getattr(func, '__name__', 'uploader')} (ignored): {exc!r}")
            return None


def make_uploader(directory: str, upload: Upload | None) -> Uploader | None:
    """The uploader, or None (said on stderr) when it cannot be set up: rendering goes on anyway."""
    if upload is None:
        return None
    try:
        from ..inputs import parse_s3_url
        from ..stores.s3 import S3Store

        location = parse_s3_url(upload.url)
        return Uploader(directory, S3Store(location, upload.endpoint_url), location, upload.spool_max_bytes)
    except Exception as exc:
        print(f"gunicorn-pyinstrument helper: cannot upload to {upload.url}: {exc}", file=sys.stderr)
        return None
