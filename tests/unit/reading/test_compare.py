"""Function-level comparison: frame identifiers as functions, self and total time per function
(recursion counted once), the per-report diff of two selections, and its text and HTML output."""

from __future__ import annotations

import math
import re
import time

import pytest
from pyinstrument import Profiler
from pyinstrument.session import Session

from gunicorn_pyinstrument.aggregate import worker_root
from gunicorn_pyinstrument.reading.compare import Profile, diff, function_of, html_page, profile, text_table

THREAD = "MainThread\x00<thread>\x00140000"


def frame(name: str, filename: str = "/app/views.py", line: int = 10, cls: str | None = None) -> str:
    """A frame identifier as pyinstrument records it, with the current line as an attribute."""
    identifier = f"{name}\x00{filename}\x00{line}"
    if cls is not None:
        identifier += f"\x01c{cls}"
    return identifier + f"\x01l{line + 3}"


def session(*samples: tuple[list[str], float], duration: float | None = None) -> Session:
    """A session of the given (stack below the thread root, seconds) samples."""
    records = [([THREAD, *stack], seconds) for stack, seconds in samples]
    return Session(
        frame_records=records,
        start_time=1_764_000_000.0,
        duration=duration if duration is not None else sum(s for _, s in samples),
        min_interval=0.001,
        max_interval=0.001,
        sample_count=len(records),
        start_call_stack=[THREAD],
        target_description="hand-built",
        cpu_time=0.0,
        sys_path=[],
        sys_prefixes=[],
    )


MAIN = ("main", "/app/views.py", 10)
A = ("a", "/app/views.py", 20)
B = ("b", "/app/views.py", 30)
REC = ("rec", "/app/views.py", 40)


# --- function_of ---


def test_function_of_plain_identifier():
    assert function_of("handler\x00/app/views.py\x0042") == ("handler", "/app/views.py", 42)


def test_function_of_with_class_and_line_attributes():
    assert function_of("get\x00/app/views.py\x0042\x01cUserView") == ("UserView.get", "/app/views.py", 42)
    # The current line is not part of the function: every line of it is the same function.
    assert function_of("get\x00/app/views.py\x0042\x01l57") == ("get", "/app/views.py", 42)
    assert function_of("get\x00/app/views.py\x0042\x01l57\x01cUserView\x01h1") == (
        "UserView.get",
        "/app/views.py",
        42,
    )
    assert function_of("get\x00/v.py\x005\x01cV\x01l6") == function_of("get\x00/v.py\x005\x01l99\x01cV")


def test_function_of_roots_and_odd_identifiers():
    assert function_of(THREAD) is None
    assert function_of("Thread-3 (worker)\x00<thread>\x00139") is None
    assert function_of(worker_root(4242)) is None
    assert function_of("not an identifier") is None
    assert function_of("f\x00/x.py\x00<native>") == ("f", "/x.py", 0)


def test_function_of_every_frame_of_a_real_session():
    def traced_function() -> None:
        end = time.perf_counter() + 0.02
        while time.perf_counter() < end:
            sum(range(100))

    profiler = Profiler(interval=0.0005)
    profiler.start()
    traced_function()
    real = profiler.stop()
    functions = set()
    for stack, _ in real.frame_records:
        assert function_of(stack[0]) is None  # the thread
        functions.update(f for f in map(function_of, stack[1:]) if f is not None)
    named = [f for f in functions if f[0].endswith("traced_function")]
    assert len(named) == 1
    assert named[0][1] == __file__
    assert named[0][2] == test_function_of_every_frame_of_a_real_session.__code__.co_firstlineno + 1


# --- Profile ---


def test_self_and_total_time():
    p = profile(
        [
            session(
                ([frame("main"), frame("a", line=20)], 0.010),
                ([frame("main"), frame("a", line=20), frame("b", line=30)], 0.020),
                ([frame("main")], 0.005),
                ([], 0.100),  # only the thread: nothing to count
            )
        ]
    )
    assert p.reports == 1
    assert p.seconds == pytest.approx(0.135)
    assert p.self_time == pytest.approx({A: 0.010, B: 0.020, MAIN: 0.005})
    assert p.total_time == pytest.approx({MAIN: 0.035, A: 0.030, B: 0.020})


def test_recursion_counts_total_time_once_per_sample():
    p = profile(
        [
            session(
                ([frame("main"), frame("rec", line=40)], 0.001),
                ([frame("main"), frame("rec", line=40), frame("rec", line=40), frame("rec", line=40)], 0.003),
                ([frame("main"), frame("rec", line=40), frame("a", line=20), frame("rec", line=40)], 0.004),
            )
        ]
    )
    assert p.total_time[REC] == pytest.approx(0.008)  # not 0.001 + 3 * 0.003 + 2 * 0.004
    assert p.total_time[MAIN] == pytest.approx(0.008)
    assert p.total_time[A] == pytest.approx(0.004)
    assert p.self_time == pytest.approx({REC: 0.008})


def test_lines_of_one_function_and_methods_of_two_classes():
    p = profile(
        [
            session(
                (["main\x00/app/v.py\x001\x01l2", "run\x00/app/v.py\x005\x01cJob\x01l6"], 0.01),
                (["main\x00/app/v.py\x001\x01l3", "run\x00/app/v.py\x005\x01cJob\x01l7"], 0.02),
                (["main\x00/app/v.py\x001\x01l3", "run\x00/app/v.py\x005\x01cTask\x01l7"], 0.04),
            )
        ]
    )
    assert p.self_time == pytest.approx(
        {("Job.run", "/app/v.py", 5): 0.03, ("Task.run", "/app/v.py", 5): 0.04}
    )
    assert p.total_time[("main", "/app/v.py", 1)] == pytest.approx(0.07)


def test_profile_sums_over_sessions():
    one = session(([frame("main"), frame("a", line=20)], 0.01))
    p = Profile()
    for _ in range(3):
        p.add(one)
    assert p.reports == 3
    assert p.self_time[A] == pytest.approx(0.03)
    assert p.seconds == pytest.approx(0.03)


# --- diff ---


def test_diff_is_per_report_whatever_the_sizes():
    # A: 4 reports, `a` 10 ms of its own in each; B: 1 report with 30 ms of it.
    a_side = profile([session(([frame("main"), frame("a", line=20)], 0.010))] * 4)
    b_side = profile(
        [
            session(
                ([frame("main"), frame("a", line=20)], 0.030),
                ([frame("main"), frame("b", line=30)], 0.002),
            )
        ]
    )
    result = diff(a_side, b_side)
    by_function = {c.function: c for c in result.changes}
    assert set(by_function) == {MAIN, A, B}
    a = by_function[A]
    assert (a.self_a, a.self_b) == pytest.approx((0.010, 0.030))
    assert a.self_delta == pytest.approx(0.020)
    assert a.ratio == pytest.approx(3.0)
    main = by_function[MAIN]
    assert (main.self_a, main.self_b) == (0.0, 0.0)
    assert (main.total_a, main.total_b) == pytest.approx((0.010, 0.032))
    b = by_function[B]
    assert b.ratio == math.inf
    assert [c.function for c in result.slower] == [A, B]
    assert result.faster == []
    doc = result.to_json(limit=2)
    assert doc["a"] == {"reports": 4, "mean_duration": pytest.approx(0.010)}
    assert doc["b"] == {"reports": 1, "mean_duration": pytest.approx(0.032)}
    assert [c["function"] for c in doc["changes"]] == ["a", "b"]
    assert doc["changes"][0]["self_delta"] == pytest.approx(0.020)


def test_diff_sorting_and_directions():
    a_side = profile(
        [
            session(
                ([frame("main"), frame("gone", line=50)], 0.050),
                ([frame("main"), frame("same", line=60)], 0.010),
                ([frame("main"), frame("faster", line=70)], 0.040),
            )
        ]
    )
    b_side = profile(
        [
            session(
                ([frame("main"), frame("same", line=60)], 0.010),
                ([frame("main"), frame("faster", line=70)], 0.035),
                ([frame("main"), frame("new", line=80)], 0.020),
            )
        ]
    )
    result = diff(a_side, b_side)
    names = [c.function[0] for c in result.changes]
    # By the size of the change of self time; then of total time (main: -0.035); then by name.
    assert names == ["gone", "new", "faster", "main", "same"]
    assert [c.function[0] for c in result.slower] == ["new"]
    assert [c.function[0] for c in result.faster] == ["gone", "faster"]
    same = result.changes[-1]
    assert same.ratio == 1.0 and same.self_delta == 0


def test_diff_needs_a_report_on_each_side():
    one = profile([session(([frame("main")], 0.01))])
    with pytest.raises(ValueError, match="at least one report"):
        diff(Profile(), one)
    with pytest.raises(ValueError, match="at least one report"):
        diff(one, Profile())


# --- output ---


def _result():
    a_side = profile(
        [session(([frame("main"), frame("<lambda>", "/app/<odd>&.py", 7)], 0.010), duration=0.010)] * 2
    )
    b_side = profile(
        [
            session(
                ([frame("main"), frame("<lambda>", "/app/<odd>&.py", 7)], 0.025),
                ([frame("main"), frame("render", cls="Tpl<T>")], 0.004),
                duration=0.029,
            )
        ]
    )
    return diff(a_side, b_side)


def test_text_table_rows():
    text = text_table(_result(), 25, "label=v1", "label=v2")
    lines = text.splitlines()
    assert lines[0] == (
        "label=v1: 2 report(s), mean 10.00 ms; label=v2: 1 report(s), mean 29.00 ms (+19.00 ms)"
    )
    header = next(i for i, line in enumerate(lines) if line.startswith("function"))
    rows = lines[header + 1 :]
    assert re.fullmatch(
        r"<lambda>\s+10\.00\s+25\.00\s+\+15\.00\s+\+150%\s+10\.00\s+25\.00\s+\+15\.00\s+/app/<odd>&\.py:7",
        rows[0],
    )
    assert rows[1].startswith("Tpl<T>.render") and " new " in rows[1]
    assert rows[2].startswith("main") and "+19.00" in rows[2]
    assert len(rows) == 3
    limited = text_table(_result(), 1).splitlines()
    assert limited[-1] == "... 2 more function(s)"
    assert sum(line.startswith(("<lambda>", "Tpl", "main")) for line in limited) == 1


def test_html_page_rows_are_escaped():
    page = html_page(_result(), "v1 <b>vs</b> v2", "label=<v1>", "label=v2&x")
    assert page.startswith("<!doctype html>")
    assert "<title>v1 &lt;b&gt;vs&lt;/b&gt; v2</title>" in page
    assert "&lt;lambda&gt;" in page and "<lambda>" not in page
    assert "Tpl&lt;T&gt;.render" in page and "Tpl<T>" not in page
    assert "/app/&lt;odd&gt;&amp;.py:7" in page
    assert "label=&lt;v1&gt;" in page and "label=v2&amp;x" in page
    rows = re.findall(r'<tr class="(\w+)"><td class="name">([^<]*)</td>', page)
    assert rows == [("slower", "&lt;lambda&gt;"), ("slower", "Tpl&lt;T&gt;.render"), ("same", "main")]
    assert '<td class="delta">+15.00</td>' in page
    assert "more function(s)" not in page
    assert "… 2 more function(s)" in html_page(_result(), "t", limit=1)
