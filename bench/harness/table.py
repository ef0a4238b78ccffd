"""Printing: the run's first lines, aligned text tables, PASS and FAIL."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterable, Sequence

import gunicorn

from . import ROOT


def log(message: str = "") -> None:
    print(message, flush=True)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def commit() -> str:
    """The checkout's commit, and whether it has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "?"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def log_start() -> None:
    """When, where and on which commit: the first lines of every benchmark's output."""
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    log(f"date: {now}, {os.cpu_count()} CPUs, commit {commit()}, gunicorn {gunicorn.__version__}")
    log(f"load average before the run: {loadavg()}")


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], left: int = 1) -> None:
    """An aligned text table: the first ``left`` columns aligned left, the others right."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]

    def line(row: Sequence[str]) -> str:
        return " ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )

    log(line(headers))
    log("-" * len(line(headers)))
    for row in cells:
        log(line(row))
    log()
