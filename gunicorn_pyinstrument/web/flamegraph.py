"""The call tree of a flame graph, as the page's flame-graph viewer (``static/flame.js``) reads it.

One pass over the sessions' frame records: each sample's stack walks down a tree of functions
(name, file, first line; thread and worker roots left out, as in ``reading/compare.py``), adding
its seconds to every node's *total* and to its innermost node's *self*. A tree holds one side
(a report, or a selection merged) or two (a comparison: the mean per report of A and of B, the
viewer sizing frames by one side and colouring them by the change in self time).

Nodes narrower than ``MIN_FRACTION`` of the root are left out (they would be under a pixel wide):
a big merged profile stays a page of a few thousand frames.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..reading.compare import Function, function_of

if TYPE_CHECKING:
    from pyinstrument.session import Session

#: Frames narrower than this share of the whole are left out of the JSON.
MIN_FRACTION = 0.0005


@dataclass
class Node:
    total: list[float]
    self_time: list[float]
    children: dict[Function, Node] = field(default_factory=dict)


@dataclass
class Tree:
    """A call tree of ``sides`` sides; :meth:`add` one session to one side.

    Samples are first summed per distinct stack (a tuple of the frames' strings, whose hashes
    Python keeps), then each distinct stack walks the tree once: merging a thousand reports costs
    about a dictionary update per sample, not a walk."""

    sides: int = 1
    reports: list[int] = field(init=False)
    seconds: list[float] = field(init=False)
    prefixes: set[str] = field(default_factory=set)
    # (side, the session's stem) -> seconds per distinct stack, not yet in the tree.
    _stacks: dict[tuple[int, tuple[str, ...]], dict[tuple[str, ...], float]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        self.reports = [0] * self.sides
        self.seconds = [0.0] * self.sides

    def _node(self) -> Node:
        return Node([0.0] * self.sides, [0.0] * self.sides)

    def add(self, session: Session, side: int = 0) -> None:
        stacks = self._stacks.setdefault((side, tuple(session.start_call_stack)), {})
        get = stacks.get
        for stack, seconds in session.frame_records:
            key = tuple(stack)
            stacks[key] = get(key, 0.0) + seconds
        self.reports[side] += 1
        self.seconds[side] += session.duration
        self.prefixes.update(session.sys_prefixes)

    @property
    def root(self) -> Node:
        """The tree of every stack added so far."""
        root = self._node()
        functions: dict[str, Function | None] = {}
        for (side, start), stacks in self._stacks.items():
            # The stem down to the hook that started the profile (gunicorn's own frames) is left
            # out, down to that frame, as pyinstrument's renderers do: every sample has it.
            stem = [function_of(identifier) for identifier in start[:-1]]
            for stack, seconds in stacks.items():
                node = root
                node.total[side] += seconds
                in_stem = True
                for depth, identifier in enumerate(stack):
                    if identifier in functions:
                        function = functions[identifier]
                    else:
                        function = functions[identifier] = function_of(identifier)
                    if in_stem:
                        if depth < len(stem) and function == stem[depth]:
                            continue
                        in_stem = False
                    if function is None:
                        continue
                    child = node.children.get(function)
                    if child is None:
                        child = node.children[function] = self._node()
                    child.total[side] += seconds
                    node = child
                node.self_time[side] += seconds
        return root

    def to_json(self, per_report: bool = False, min_fraction: float = MIN_FRACTION) -> dict[str, Any]:
        """``{"sides", "reports", "files", "root"}``; each node ``{"n": name, "f": index in files,
        "l": line, "k": "app", "lib" or "", "t": [total per side], "s": [self per side], "c": [...]}``
        in seconds (per report with ``per_report``), children largest first."""
        scale = [1 / n if per_report and n else 1.0 for n in self.reports]
        tree = self.root
        floor = max(tree.total) * min_fraction
        files: dict[str, int] = {}
        prefixes = tuple(sorted(self.prefixes, key=len, reverse=True))

        def values(numbers: list[float]) -> list[float]:
            return [round(v * k, 7) for v, k in zip(numbers, scale, strict=True)]

        def convert(function: Function | None, node: Node) -> dict[str, Any]:
            out: dict[str, Any] = {"t": values(node.total), "s": values(node.self_time)}
            if function is not None:
                name, filename, line = function
                out |= {"n": name, "f": files.setdefault(filename, len(files)), "l": line}
                out["k"] = _kind(filename, prefixes)
            kept = [(f, c) for f, c in node.children.items() if max(c.total) >= floor]
            kept.sort(key=lambda item: -max(item[1].total))
            if kept:
                out["c"] = [convert(f, c) for f, c in kept]
            return out

        root = convert(None, tree)
        root["n"] = "(all)"
        return {
            "sides": self.sides,
            "reports": self.reports,
            "seconds": [round(s, 6) for s in self.seconds],
            "files": list(files),
            "root": root,
        }


def _kind(filename: str, prefixes: Sequence[str]) -> str:
    """``lib`` for the standard library and installed packages, ``app`` for the app's own code,
    empty for built-ins (pyinstrument's own rule: a file under one of the session's prefixes)."""
    if filename.startswith("<"):
        return ""
    return "lib" if any(filename.startswith(p) for p in prefixes) else "app"


def tree_of(sessions: Iterable[Session]) -> Tree:
    tree = Tree(1)
    for session in sessions:
        tree.add(session)
    return tree


def diff_tree(a: Iterable[Session], b: Iterable[Session]) -> Tree:
    tree = Tree(2)
    for side, sessions in enumerate((a, b)):
        for session in sessions:
            tree.add(session, side)
    return tree
