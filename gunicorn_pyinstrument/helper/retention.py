"""Retention while serving: GUNICORN_PYINSTRUMENT_MAX_REPORTS and MAX_BYTES, applied by the helper.

About once a second while reports arrive, oldest first, through the catalog's index (the same
``Catalog.prune`` that ``gunicorn-pyinstrument prune`` runs), so no worker ever scans the directory.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..catalog import Catalog

RETENTION_SECONDS = 1.0
#: How often report files left without a metadata record are looked for: it walks the whole
#: directory, and such files count only once they are an hour old.
ORPHAN_SWEEP_SECONDS = 600.0


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
                from ..catalog import Catalog  # the index, only once retention is due

                self._catalog = Catalog(self.directory)
            limits = self.retention
            self._catalog.prune(limits.max_reports, limits.max_bytes, orphans=orphans)
        except Exception as exc:
            print(
                f"gunicorn-pyinstrument helper: cannot apply retention in {self.directory}: {exc!r}",
                file=sys.stderr,
            )
            if self._catalog is not None:
                with contextlib.suppress(Exception):
                    self._catalog.close()
            self._catalog = None
