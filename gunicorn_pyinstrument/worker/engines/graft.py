"""pyinstrument's engine: a request's pool jobs put in place of the time it waited for them.

pyinstrument samples only the thread that started it. Each job of the request runs under a
profiler of its own in its pool thread (``pyinstrument.py``); when the request's profile stops,
:func:`graft` puts each job's records where the request waited while the job ran. Pure functions
over frame records (``(stack, seconds)`` pairs), one pass each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...processors import OUT_OF_CONTEXT
from .frames import function_key
from .handover import RUN_JOB_KEY, Job, without_own_frames

AWAIT = "[await]"

Records = list[tuple[list[str], float]]


def job_records(records: Sequence[tuple[Sequence[str], float]]) -> Records:
    """A pool thread's records, kept from the job's own frames on: the pool's start-up, its loop
    and the hand-over's own frames go."""
    kept: Records = []
    for stack, seconds in records:
        start = 0
        for i in range(len(stack) - 1, -1, -1):
            if stack[i].startswith(RUN_JOB_KEY):
                start = i + 1
                break
        kept.append((list(stack[start:]), seconds))
    return without_own_frames(kept)


def _wait_kind(stack: list[str], idle: Sequence[str]) -> str | None:
    """How a record shows the request waiting: ``[await]`` (or ``[out-of-context]``: strict mode's
    name for the request suspended while other tasks run, when it did not see it await), a lock
    wait, or its event loop idle (``idle``: the loop thread's stack below every task; an event loop
    written in C, such as uvloop, waits with no Python frame above it, so pyinstrument charges that
    wait to the last of these frames). None: the record is work."""
    leaf = stack[-1] if stack else ""
    if leaf in (AWAIT, OUT_OF_CONTEXT):
        return "await"
    if leaf.startswith(("lock.acquire\x00<built-in>", "acquire\x00<built-in>")):
        return "lock"
    keys = zip(stack[1:], idle[1:], strict=False)
    if idle and 2 <= len(stack) <= len(idle) and all(function_key(frame) == key for frame, key in keys):
        return "idle"
    return None


def _cut_at(stack: list[str], key: str) -> int | None:
    for i in range(len(stack) - 1, -1, -1):
        if function_key(stack[i]) == key:
            return i
    return None


def graft(
    records: Records, t0: float, jobs: Sequence[Job], spare: float = 0.0, idle: Sequence[str] = ()
) -> Records:
    """Put each job's records in place of the time the request waited while the job ran.

    ``records`` are in time order from ``t0``; each job has its own records and its span
    ``[t0, t1]`` on the same clock. A record is a *candidate* for job J when it overlaps J's span and
    is a wait: ``[await]`` (in strict mode only the request's own tasks produce it, so while J runs
    it is the request waiting for J), its event loop idle, or a lock wait whose stack holds the
    frame that handed J over (a thread waiting on J's future). Each candidate's overlap is shared
    among the jobs running then. J's records (its own jobs grafted in first) are scaled down to what
    it was given, never up, and hang under the candidate's stack cut at the hand-over frame, or else
    under the stack that handed J over, as it was when J was submitted. What is left of a
    candidate (queueing for a pool thread, the loop waking up) stays as it was: the total is
    unchanged.

    ``spare``: time pyinstrument did not record at all (strict mode can record less than the
    session's duration, while every task of the request awaits pool jobs). It goes to the jobs
    short of their own time, so that they do not vanish; the total then moves towards the duration.
    """
    if not jobs:
        return [(list(stack), seconds) for stack, seconds in records]
    own = {id(j): graft(j.records, j.t0, j.children) if j.children else j.records for j in jobs}
    given = dict.fromkeys(own, 0.0)
    prefix: dict[int, tuple[bool, list[str]]] = {}
    plan: list[Any] = []  # (stack, seconds), or a Job where its records go
    placed: set[int] = set()
    t = t0
    for raw, dt in records:
        start, t = t, t + dt
        stack = list(raw)
        shares = []
        kind = _wait_kind(stack, idle)
        if kind is not None:
            for job in jobs:
                overlap = min(t, job.t1) - max(start, job.t0)
                if overlap <= 0:
                    continue
                cut = _cut_at(stack, job.key)
                if cut is not None or kind != "lock":  # a thread's lock wait: only for its own job
                    shares.append((job, overlap, cut))
        if not shares:
            plan.append((stack, dt))
            continue
        factor = min(1.0, dt / sum(overlap for _, overlap, _ in shares))
        used = 0.0
        for job, overlap, cut in shares:
            give = overlap * factor
            given[id(job)] += give
            used += give
            keyed = cut is not None
            if id(job) not in prefix or (keyed and not prefix[id(job)][0]):
                prefix[id(job)] = (keyed, stack[: cut + 1] if cut is not None else _handed_over(job, stack))
            if id(job) not in placed:
                placed.add(id(job))
                plan.append(job)
        if dt - used > 1e-12:
            plan.append((stack, dt - used))
    for job in jobs:
        if spare <= 0:
            break
        short = sum(seconds for _, seconds in own[id(job)]) - given[id(job)]
        if short > 0:
            extra = min(short, spare)
            given[id(job)] += extra
            spare -= extra
            if id(job) not in placed:  # nothing to take its place: after the request's own records
                placed.add(id(job))
                prefix[id(job)] = (False, _awaiting_prefix(records))
                plan.append(job)
    grafted: Records = []
    for item in plan:
        if not isinstance(item, Job):
            grafted.append(item)
            continue
        recorded = own[id(item)]
        total = sum(seconds for _, seconds in recorded)
        budget = given[id(item)]
        head = prefix[id(item)][1]
        scale = min(1.0, budget / total) if total > 0 else 0.0
        grafted.extend((head + list(stack), seconds * scale) for stack, seconds in recorded)
        if budget - total * scale > 1e-12:
            grafted.append(([*head, AWAIT], budget - total * scale))
    return [(stack, seconds) for stack, seconds in grafted if seconds > 0]


def _handed_over(job: Job, stack: list[str]) -> list[str]:
    if job.handover:
        return list(job.handover)
    return stack[:-1] if stack and stack[-1] == AWAIT else list(stack)


def _awaiting_prefix(records: Records) -> list[str]:
    for stack, _ in records:
        if stack and stack[-1] == AWAIT:
            return list(stack[:-1])
    return [records[0][0][0]] if records and records[0][0] else []
