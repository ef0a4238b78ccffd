"""What the catalog's tests share: reading a test directory's records, files and names."""

from __future__ import annotations

import json
from pathlib import Path

from gunicorn_pyinstrument.catalog import Catalog
from gunicorn_pyinstrument.directory import METADATA_SUFFIX
from gunicorn_pyinstrument.report import Report


def record_of(directory: Path, name: str) -> dict:
    return json.loads((directory / (name + METADATA_SUFFIX)).read_bytes())


def names(entries) -> list[str]:
    return [e.name for e in entries]


def catalog_names(directory: Path | str, **kwargs) -> list[str]:
    with Catalog(str(directory), **kwargs) as cat:
        return names(cat.entries())


def files_of(directory: Path, report: Report) -> list[Path]:
    record = record_of(directory, report.name)
    return [directory / (report.name + METADATA_SUFFIX), *(directory / f for f in record["files"].values())]


def report_files(directory: Path) -> list[str]:
    """The directory's files, the index and the spool left out."""
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))
