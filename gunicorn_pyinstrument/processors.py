"""Pure functions over a session's frame records (``(stack, seconds)`` pairs).

They run in the worker right after a profiler stops, so each is a single linear pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

OUT_OF_CONTEXT = "[out-of-context]"

Record = tuple[list[str], float]


def collapse_out_of_context(records: Sequence[Any]) -> list[Record]:
    """Move time spent switched out to the root of the request's own tree.

    In strict async mode pyinstrument records time a greenlet spent switched out as the stack of
    whatever other greenlet it noticed the switch in, plus ``[out-of-context]``. That foreign stack
    names another request's functions, so keep only the request's root and the marker. (The stack
    last sampled before the switch is no better: it may be up to one interval older than the
    switch, and would charge waiting time to a CPU-bound function.)
    """
    own_root: str | None = None
    for stack, _ in records:
        if stack and stack[-1] != OUT_OF_CONTEXT:
            own_root = stack[0]
            break
    result: list[Record] = []
    for stack, seconds in records:
        if stack and stack[-1] == OUT_OF_CONTEXT:
            stack = [own_root, OUT_OF_CONTEXT] if own_root is not None else [OUT_OF_CONTEXT]
        result.append((list(stack), seconds))
    return result


def merge_repeats(records: Sequence[Any]) -> list[Record]:
    """Merge consecutive samples with the same stack, adding their times.

    Call trees, timelines and speedscope render the same; the file is much smaller when a request
    spends long in one place (a timed-out request at 1 ms makes tens of thousands of samples).
    """
    result: list[Record] = []
    for stack, seconds in records:
        if result and result[-1][0] == stack:
            result[-1] = (result[-1][0], result[-1][1] + seconds)
        else:
            result.append((list(stack), seconds))
    return result
