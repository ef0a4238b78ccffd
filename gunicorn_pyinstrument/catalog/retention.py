"""Retention (``GUNICORN_PYINSTRUMENT_MAX_REPORTS`` / ``MAX_BYTES``): which reports go, oldest
first, and how, the metadata record before the files, so a report never appears half-removed;
and the orphans, files a worker left without a record. :meth:`Catalog.prune` applies it."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterable

from ..directory import JOB_SUFFIX, METADATA_SUFFIX, REPORT_NAME, SPOOL_DIR, TEMP_PREFIX, report_name
from ..stores.local import check_name
from .entry import Entry

#: Report files without a metadata record (a worker killed between the session and its record)
#: are removed by retention once this old and not waiting for the renderer.
ORPHAN_SECONDS = 3600.0


def over_limits(
    oldest_first: Iterable[Entry], count: int, size: int, max_reports: int | None, max_bytes: int | None
) -> list[Entry]:
    """The oldest entries to remove so that at most ``max_reports`` remain, holding at most
    ``max_bytes``, of ``count`` entries holding ``size`` bytes; read only as far as needed."""
    removed: list[Entry] = []
    if (max_reports is None or count <= max_reports) and (max_bytes is None or size <= max_bytes):
        return removed
    for entry in oldest_first:
        if (max_reports is None or count <= max_reports) and (max_bytes is None or size <= max_bytes):
            break
        removed.append(entry)
        count -= 1
        size -= entry.bytes
    return removed


def remove(directory: str, entries: Iterable[Entry], orphans: Iterable[str]) -> None:
    """Remove each report's files, its record first: from then on no reader lists it."""
    for entry in entries:
        for filename in [entry.name + METADATA_SUFFIX, *entry.files.values()]:
            with contextlib.suppress(FileNotFoundError, ValueError):
                os.unlink(os.path.join(directory, check_name(filename)))
    for filename in orphans:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(directory, filename))


def find_orphans(directory: str, known: set[str]) -> list[str]:
    """The files of reports that are neither ``known`` (listed or unreadable) nor waiting for the
    renderer, older than :data:`ORPHAN_SECONDS`: a walk of the whole directory."""
    try:
        spool = os.listdir(os.path.join(directory, SPOOL_DIR))
        pending = {n[: -len(JOB_SUFFIX)] for n in spool if n.endswith(JOB_SUFFIX)}
    except OSError:
        pending = set()
    cutoff = time.time() - ORPHAN_SECONDS
    orphans = []
    with os.scandir(directory) as entries:
        for item in entries:
            if item.name.startswith((".", TEMP_PREFIX)) or not item.is_file(follow_symlinks=False):
                continue
            name = report_name(item.name)
            if name is None or name in known or name in pending or item.name.endswith(METADATA_SUFFIX):
                continue
            if not REPORT_NAME.match(name):
                continue  # not written by a worker (a user's notes.txt, a merged_*.html): not ours
            with contextlib.suppress(OSError):
                if item.stat(follow_symlinks=False).st_mtime < cutoff:
                    orphans.append(item.name)
    return sorted(orphans)
