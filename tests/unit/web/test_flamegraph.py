"""The flame graph's call tree: totals and self times per frame, the stem left out, narrow frames
dropped, and a comparison's two sides per report."""

from __future__ import annotations

from typing import Any

import pytest
from pyinstrument.session import Session

from gunicorn_pyinstrument.web.flamegraph import diff_tree, tree_of

THREAD = "MainThread\x00<thread>\x001"
MAIN = "main\x00/usr/lib/python3/site-packages/gunicorn/arbiter.py\x0010"
HOOK = "handle_request\x00/usr/lib/python3/site-packages/gunicorn/workers/sync.py\x00168"


def frame(name: str, filename: str = "/srv/app/views.py", line: int = 1) -> str:
    return f"{name}\x00{filename}\x00{line}"


def session(records: list[tuple[list[str], float]], stem: tuple[str, ...] = (THREAD,)) -> Session:
    return Session(
        frame_records=records,
        start_time=0.0,
        duration=sum(seconds for _, seconds in records),
        min_interval=0.001,
        max_interval=0.001,
        sample_count=len(records),
        start_call_stack=list(stem),
        target_description="test",
        cpu_time=0.0,
        sys_path=[],
        sys_prefixes=["/usr/lib/python3"],
    )


def child(node: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in node.get("c", []) if c["n"] == name]
    return found


def test_totals_and_self_times() -> None:
    view, query, render = frame("view"), frame("query", line=5), frame("render", line=9)
    tree = tree_of(
        [session([([THREAD, view, query], 0.003), ([THREAD, view], 0.001), ([THREAD, view, render], 0.002)])]
    ).to_json()
    root = tree["root"]
    assert root["n"] == "(all)" and root["t"] == [0.006]
    node = child(root, "view")
    assert (node["t"], node["s"], node["l"], node["k"]) == ([0.006], [0.001], 1, "app")
    assert tree["files"][node["f"]] == "/srv/app/views.py"
    assert [c["n"] for c in node["c"]] == ["query", "render"]  # the largest first
    assert child(node, "query")["s"] == [0.003] and "c" not in child(node, "query")


def test_the_stem_down_to_the_hook_is_left_out_and_libraries_are_marked() -> None:
    hook_now = HOOK + "\x01l184"  # the same function, at another line
    records = [([THREAD, MAIN, hook_now, frame("view"), "len\x00<built-in>\x000"], 0.002)]
    root = tree_of([session(records, stem=(THREAD, MAIN, HOOK + "\x01l172"))]).to_json()["root"]
    [hook] = root["c"]
    assert (hook["n"], hook["k"]) == ("handle_request", "lib")
    builtin = child(child(hook, "view"), "len")
    assert builtin["k"] == "" and builtin["s"] == [0.002]


def test_frames_narrower_than_the_floor_are_left_out() -> None:
    records = [([THREAD, frame("wide")], 1.0), ([THREAD, frame("narrow")], 0.0001)]
    root = tree_of([session(records)]).to_json(min_fraction=0.001)["root"]
    assert [c["n"] for c in root["c"]] == ["wide"]
    assert root["t"] == [1.0001]  # the whole still counts it


def test_a_comparison_is_per_report_on_each_side() -> None:
    slow, fast = frame("slow"), frame("fast", line=2)
    a = [session([([THREAD, slow], 0.010), ([THREAD, fast], 0.030)]) for _ in range(2)]
    b = [session([([THREAD, slow], 0.050), ([THREAD, fast], 0.010)])]
    tree = diff_tree(a, b).to_json(per_report=True)
    assert (tree["sides"], tree["reports"]) == (2, [2, 1])
    assert child(tree["root"], "slow")["s"] == pytest.approx([0.010, 0.050])
    assert child(tree["root"], "fast")["s"] == pytest.approx([0.030, 0.010])
