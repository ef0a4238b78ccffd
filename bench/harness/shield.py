"""Shielding a run from the machine's other processes.

As root, the sessions of gunicorn (its helper is in the same one) and of wrk get scheduler
autogroup nice -20: other processes then only get the moments these leave idle.
"""

from __future__ import annotations

import subprocess

from .table import log

NICE = -20


def set_nice(pid: int, nice: int = NICE) -> None:
    """Set the nice value of the scheduler autogroup (the session) ``pid`` is in."""
    with open(f"/proc/{pid}/autogroup", "w") as f:
        f.write(str(nice))


def unavailable() -> str | None:
    """Why autogroups cannot shield the run here, or None."""
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            if f.read().strip() != "1":
                return "scheduler autogroups are disabled"
    except OSError:
        return "no scheduler autogroups on this kernel"
    probe = subprocess.Popen(["sleep", "5"], start_new_session=True)
    try:
        set_nice(probe.pid)
    except OSError as exc:
        return f"cannot raise an autogroup's priority ({exc.strerror})"
    finally:
        probe.kill()
        probe.wait()
    return None


def shield(wanted: bool, what: str = "gunicorn and wrk") -> bool:
    """Whether the run is shielded: ``wanted`` and possible here; says so."""
    why = unavailable() if wanted else None
    if why is not None:
        log(f"(not shielded from other processes: {why})")
    shielded = wanted and why is None
    log(f"{what} run at autogroup nice " + (f"{NICE}, above other processes" if shielded else "0"))
    return shielded


def max_others(shielded: bool) -> float:
    """The share of the machine other processes may use during a load before it is measured again
    (shielded, they only get the moments the run leaves idle)."""
    return 0.35 if shielded else 0.10
