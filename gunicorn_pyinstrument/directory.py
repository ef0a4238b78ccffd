"""The report directory: every name, suffix, mark and record format on disk, owned here alone.

Workers write, the master's helper process renders, prunes and uploads, and the reading tools
(catalog, CLI, web page, bucket mirror) read. They agree only through what this module defines::

    DIR/                                   created 0700 (or wider, following FILE_MODE)
      <NAME>.pyisession                    the session; the other formats beside it:
      <NAME>.html .speedscope.json .txt .pstats      (FORMAT_SUFFIXES)
      <NAME>.meta.json                     the metadata record, written LAST: a report exists
                                           when, and only when, its record does
      .tmp-<random>                        a file being written (renamed into place whole)
      .spool/<NAME>.job.json               a job for the helper: formats still to render
      .spool/<NAME>.pyisession             its session, when the session format is not kept
      .spool/<NAME>.job.json.failed        a job the helper could not render, set aside
      <NAME>.meta.json.failed              a record the uploader could not read, set aside
      .spool-full                          the uploader's mark: the spool is over its bound,
                                           workers drop new reports while it is there
      .catalog/index.sqlite3               the reading tools' index (a cache of the records)
      .helper.lock                         held by the helper a middleware started, so that one
                                           runs per directory

``NAME`` is ``<UTC start, 20261126T143618.123456Z>_<METHOD>_<path>_<N>ms[_TIMEOUT]_<pid>-<instance>-<n>``
(``WORKER_window`` in place of method and path for a per-worker window, ``WORKER_dropped`` for a
record of dropped reports); only ``[A-Za-z0-9._-]``, never a separator (``report.py`` builds it).
It sorts by start time, and the start day is the object key's day in a bucket.

**Metadata record** (``<NAME>.meta.json``, version ``METADATA_VERSION``): ``version``, ``kind``
(``request``, ``worker`` or ``dropped``), ``name``, ``time`` (ISO), ``start``, ``end``, ``duration``
(seconds), ``method``, ``path``, ``query``, ``headers``, ``status``, ``trigger``, ``outcome``,
``label``, ``hostname``, ``pid``, ``worker`` (``age``, ``class``, ``instance``), ``samples``,
``interval`` (asked for), ``rate`` (samples per second achieved), ``sampler_cpu`` and
``sampler_share`` (the sampler engine's CPU seconds over the report's span, and as a share of the
worker's CPU; null with pyinstrument's engine), ``over_budget`` (sampler windows: its CPU went over
MAX_OVERHEAD; else null), ``dropped`` (``queue_full``, ``spool_full``: the reports its worker
dropped since its previous kept report, its writer's queue full or the upload spool over its
bound), ``files`` (format → file name). What a window has no value for is null; a field missing
from an older record reads as null.

**Record of dropped reports** (kind ``dropped``): the same keys, ``files`` empty, written by a
worker at exit when it dropped reports after its last kept one; ``start`` and ``end`` are its first
and last such drop, ``dropped`` their counts. No session: the reading tools add it to the counts of
dropped reports and list it only when asked for that kind; retention and uploads take it as any
record.

**Job record** (``.spool/<NAME>.job.json``): ``metadata`` (the record to write once rendered),
``pending`` (formats still to render), ``session_in_spool`` (where the session is), ``file_mode``.

Every record is JSON written by :func:`dumps`.
"""

from __future__ import annotations

import json
import re

#: Format name (as in GUNICORN_PYINSTRUMENT_FORMATS) → file suffix.
FORMAT_SUFFIXES: dict[str, str] = {
    "session": ".pyisession",
    "html": ".html",
    "speedscope": ".speedscope.json",
    "text": ".txt",
    "pstats": ".pstats",
}
METADATA_SUFFIX = ".meta.json"
METADATA_VERSION = 1
KIND_REQUEST = "request"
KIND_WORKER = "worker"
KIND_DROPPED = "dropped"

TEMP_PREFIX = ".tmp-"
SPOOL_DIR = ".spool"
JOB_SUFFIX = ".job.json"
FAILED_SUFFIX = ".failed"
FULL_MARK = ".spool-full"
HELPER_LOCK = ".helper.lock"

INDEX_DIR = ".catalog"
INDEX_FILE = "index.sqlite3"

#: The start of every report name: its UTC start time, the day captured.
REPORT_NAME = re.compile(r"(\d{4})(\d{2})(\d{2})T\d{6}\.\d{6}Z_")


def dumps(record: object) -> bytes:
    """The bytes of a metadata or job record."""
    return json.dumps(record, indent=1, sort_keys=True).encode("utf-8")


def report_name(file_name: str) -> str | None:
    """The report name of one of its files, or None for a name that is not a report's file."""
    for suffix in (METADATA_SUFFIX, *FORMAT_SUFFIXES.values()):
        if file_name.endswith(suffix):
            return file_name[: -len(suffix)]
    return None
