"""Pure functions over a session's frame records (``(stack, seconds)`` pairs).

They run in the worker right after a profiler stops, so each is a single linear pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

OUT_OF_CONTEXT = "[out-of-context]"

Record = tuple[list[str], float]


def collapse_out_of_context(records: Sequence[Any]) -> list[Record]:
    """Move time spent switched out under the request's own root.

    In strict async mode pyinstrument records time a request spent switched out as the stack of
    whatever greenlet or task it noticed the switch in, plus ``[out-of-context]``. That foreign
    stack names another request's functions; keep only the request's root and the marker.
    """
    own_root: str | None = None
    for stack, _ in records:
        if stack and stack[-1] != OUT_OF_CONTEXT:
            own_root = stack[0]
            break
    result: list[Record] = []
    for stack, seconds in records:
        if stack and stack[-1] == OUT_OF_CONTEXT:
            root = own_root if own_root is not None else stack[0]
            stack = [root, OUT_OF_CONTEXT] if root != OUT_OF_CONTEXT else [OUT_OF_CONTEXT]
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
