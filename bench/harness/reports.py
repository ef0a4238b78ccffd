"""What a server wrote in its report directory: reports, and jobs left in the spool."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

from gunicorn_pyinstrument.directory import FAILED_SUFFIX, JOB_SUFFIX, METADATA_SUFFIX, SPOOL_DIR

#: In the names of the reports of GET /work (<stamp>_<METHOD>_<path>_<ms>ms_<worker>...).
HEAVY_MARK = "_GET_work_"


def count(directory: str, suffix: str, mark: str = HEAVY_MARK) -> int:
    """Files whose name ends with ``suffix`` and has ``mark`` in it."""
    try:
        return sum(1 for n in os.listdir(directory) if n.endswith(suffix) and mark in n)
    except FileNotFoundError:
        return 0


def spool(directory: str) -> tuple[int, int]:
    """(jobs waiting, jobs failed) in the report directory's spool."""
    path = os.path.join(directory, SPOOL_DIR)
    return count(path, JOB_SUFFIX, ""), count(path, FAILED_SUFFIX, "")


def metadata(directory: str, mark: str = HEAVY_MARK) -> list[dict[str, Any]]:
    """The reports' metadata (their ``.meta.json``) in the order of their names."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for name in sorted(os.listdir(directory)):
            if name.endswith(METADATA_SUFFIX) and mark in name:
                with contextlib.suppress(OSError, ValueError), open(os.path.join(directory, name)) as f:
                    found.append(json.load(f))
    return found
