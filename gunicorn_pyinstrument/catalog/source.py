"""Where a directory's report files come from when they are not there yet.

The directory may be a local copy of remote storage holding only the metadata records
(``reading/mirror.py``): a :class:`Source` attached to it fetches a report's other files when they
are first opened, and tells their sizes; the catalog itself knows nothing of the storage.
"""

from __future__ import annotations

import os
from typing import Protocol


class Source(Protocol):
    """Where the files of a directory's reports come from when they are not there yet."""

    def fetch(self, filename: str) -> None:
        """Put ``filename`` into the directory; OSError (FileNotFoundError: no such file) if not."""

    def size(self, filename: str) -> int | None:
        """The file's size where it is stored, or None if unknown."""


_SOURCES: dict[str, Source] = {}


def attach_source(directory: str, source: Source | None) -> None:
    """Every Catalog of ``directory`` opened from now on (in this process) fetches through
    ``source``; None detaches it."""
    key = os.path.abspath(directory)
    if source is None:
        _SOURCES.pop(key, None)
    else:
        _SOURCES[key] = source


def attached_source(directory: str) -> Source | None:
    """The source attached to ``directory`` (an absolute path), if any."""
    return _SOURCES.get(directory)
