"""The master's handle on the helper process: start it, restart it if it died, stop and wait.

The helper (``python -m gunicorn_pyinstrument.helper``, ``__main__.py``) renders, prunes and
uploads. Only this module is imported into the master, so the catalog, pyinstrument's renderers
and boto3 stay out of it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from ..settings import Settings
from .rendering import pending_jobs
from .retention import Retention
from .upload import Upload, pending_reports


class HelperProcess:
    """The master's handle on the helper: start, restart if it died, stop and wait."""

    def __init__(
        self,
        directory: str,
        retention: Retention | None = None,
        upload: Upload | None = None,
        exclusive: bool = False,
    ) -> None:
        self.directory = directory
        self.retention = retention or Retention()
        self.upload = upload
        #: Serve the directory only while no other helper does (``lock.py``).
        self.exclusive = exclusive
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
                "gunicorn_pyinstrument.helper",
                "--parent",
                str(os.getpid()),
                *(["--once"] if once else []),
                *(["--exclusive"] if self.exclusive and not once else []),
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
        return bool(pending_reports(self.directory))

    def stop(self, timeout: float) -> bool:
        """Ask it to finish the pending jobs; wait up to ``timeout``. True when it is done.
        If it is not, it goes on alone and exits when the spool is empty. When it is not running
        (it died) but jobs wait, finish them now with a one-off helper."""
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


def helper_for(settings: Settings, exclusive: bool = False) -> HelperProcess | None:
    """The helper these settings need (not started yet): None when it would have nothing to do,
    with only the session written, no retention and no upload."""
    upload = None
    if settings.upload is not None:
        upload = Upload(str(settings.upload), settings.s3_endpoint_url, settings.spool_max_bytes)
    if not (settings.rendered_formats or settings.retention or upload is not None):
        return None
    retention = Retention(settings.max_reports, settings.max_bytes)
    return HelperProcess(settings.dir, retention, upload, exclusive)
