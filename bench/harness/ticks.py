"""CPU time from /proc, in clock ticks: of a process, of its threads, of the whole machine."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(path: str) -> list[str] | None:
    """The fields of a stat file after the command name: [0] is the state (field 3 of proc(5))."""
    try:
        with open(path) as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def cpu_ticks(pid: int, tid: int | None = None) -> int | None:
    """utime + stime of a process (every thread) or of one of its threads; None when it is gone."""
    fields = _stat(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat")
    return None if fields is None else int(fields[11]) + int(fields[12])


def stopped(pid: int) -> bool:
    """Stopped by a signal, or gone."""
    fields = _stat(f"/proc/{pid}/stat")
    return fields is None or fields[0] in "Tt"


def started_at(pid: int) -> float | None:
    """When a process started, in epoch seconds."""
    fields = _stat(f"/proc/{pid}/stat")
    with open("/proc/stat") as f:
        boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
    return None if fields is None else boot + int(fields[19]) / CLK_TCK


def tree_ticks(pids: Iterable[int]) -> dict[int, int]:
    """CPU ticks of each process still there."""
    return {pid: t for pid in pids if (t := cpu_ticks(pid)) is not None}


def side_thread_ticks(pids: Iterable[int]) -> dict[tuple[int, int], int]:
    """CPU ticks of each process's threads other than its main one, by (pid, tid)."""
    ticks = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            for tid in map(int, os.listdir(f"/proc/{pid}/task")):
                if tid != pid and (t := cpu_ticks(pid, tid)) is not None:
                    ticks[pid, tid] = t
    return ticks


def children(pid: int) -> list[int]:
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as f:
                found.update(int(p) for p in f.read().split())
    return sorted(found)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid``, children before their own children."""
    found: list[int] = []
    level = children(pid)
    while level:
        found += level
        level = [grandchild for child in level for grandchild in children(child)]
    return found


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return ""


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of the whole machine since boot."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def wait_until_idle(ticks: Callable[[], int], timeout: float) -> None:
    """Until ``ticks()`` stops growing (two quarter-seconds in a row with at most one tick), or
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    before, quiet = ticks(), 0
    while quiet < 2 and time.monotonic() < deadline:
        time.sleep(0.25)
        now = ticks()
        quiet = quiet + 1 if now - before <= 1 else 0
        before = now


def ms_per_request(ticks: int, requests: int) -> float:
    return ticks / CLK_TCK * 1000 / requests if requests else float("nan")
