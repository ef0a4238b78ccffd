"""Combining profiles: merge_sessions (concatenation in one pass) and StackAggregate (time summed
per distinct call stack, every root replaced by the worker's), on real pyinstrument sessions."""

from __future__ import annotations

import copy
import json
import threading
import time

import pytest
from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer
from pyinstrument.session import Session

from gunicorn_pyinstrument.aggregate import StackAggregate, merge_sessions, worker_root

INTERVAL = 0.0005


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(100))


def first_work() -> None:
    burn(0.015)


def second_work() -> None:
    burn(0.015)


def third_work() -> None:
    burn(0.015)


WORKS = (first_work, second_work, third_work)


def profile(func, on_thread: bool = False) -> Session:
    """A real pyinstrument session of ``func`` (optionally run on a thread of its own)."""

    def run() -> Session:
        profiler = Profiler(interval=INTERVAL, async_mode="disabled")
        profiler.start()
        func()
        return profiler.stop()

    if not on_thread:
        return run()
    out: list[Session] = []
    thread = threading.Thread(target=lambda: out.append(run()))
    thread.start()
    thread.join()
    return out[0]


def names_in(session: Session) -> set[str]:
    return {frame.split("\x00", 1)[0] for stack, _ in session.frame_records for frame in stack}


def console(session: Session) -> str:
    return ConsoleRenderer(unicode=False, color=False, show_all=True).render(session)


def total_time(session: Session) -> float:
    return sum(seconds for _, seconds in session.frame_records)


def snapshot(session: Session) -> dict:
    return copy.deepcopy(session.to_json())


def roundtrip(session: Session) -> Session:
    return Session.from_json(json.loads(json.dumps(session.to_json())))


@pytest.fixture(scope="module")
def sessions() -> list[Session]:
    """Three real sessions, each of a different function, one of them on another thread."""
    made = [profile(first_work), profile(second_work, on_thread=True), profile(third_work)]
    for session, work in zip(made, WORKS, strict=True):
        assert session.sample_count > 0
        assert work.__name__ in names_in(session)
    return made


def synthetic(index: int, records: int = 200, distinct: int = 20) -> Session:
    """A session of ``records`` one-sample records over ``distinct`` stacks."""
    root = f"MainThread\x00<thread>\x00{1000 + index}"
    stacks = [
        [
            root,
            "<module>\x00app.py\x001",
            f"handler_{k}\x00app.py\x00{10 + k}",
            f"leaf_{k % 3}\x00lib.py\x005",
        ]
        for k in range(distinct)
    ]
    return Session(
        frame_records=[(stacks[i % distinct], 0.001) for i in range(records)],
        start_time=1_700_000_000.0 + index,
        duration=records * 0.001,
        min_interval=0.001,
        max_interval=0.001,
        sample_count=records,
        start_call_stack=[root],
        target_description=f"synthetic {index}",
        cpu_time=records * 0.001,
        sys_path=["/srv/app"],
        sys_prefixes=["/usr"],
    )


# --- merge_sessions ---


def test_merge_sums_samples_records_and_duration(sessions):
    merged = merge_sessions(sessions)
    assert merged.sample_count == sum(s.sample_count for s in sessions)
    assert len(merged.frame_records) == sum(len(s.frame_records) for s in sessions)
    assert merged.duration == pytest.approx(sum(s.duration for s in sessions))
    assert total_time(merged) == pytest.approx(sum(total_time(s) for s in sessions))
    assert merged.start_time == min(s.start_time for s in sessions)
    assert merged.min_interval == min(s.min_interval for s in sessions)
    assert merged.max_interval == max(s.max_interval for s in sessions)
    assert merged.start_call_stack  # renderers trim the stem to it: never empty
    assert {w.__name__ for w in WORKS} <= names_in(merged)


def test_merged_session_renders_with_every_input_function(sessions):
    merged = merge_sessions(sessions, description="three merged")
    text = console(merged)
    html = HTMLRenderer().render(merged)
    for work in WORKS:
        assert work.__name__ in text, text
        assert work.__name__ in html
    assert "three merged" in text


def test_merge_does_not_modify_its_inputs(sessions):
    before = [snapshot(s) for s in sessions]
    records_before = [list(s.frame_records) for s in sessions]
    merged = merge_sessions(reversed(sessions))  # any iterable, in any order
    console(merged)
    assert [snapshot(s) for s in sessions] == before
    assert [list(s.frame_records) for s in sessions] == records_before
    assert all(merged.frame_records is not s.frame_records for s in sessions)


def test_merge_orders_records_by_start_time():
    later, earlier = synthetic(5, records=3), synthetic(1, records=2)
    merged = merge_sessions([later, earlier])
    assert merged.start_time == earlier.start_time
    assert merged.frame_records == earlier.frame_records + later.frame_records
    assert merged.sys_path == ["/srv/app"] and merged.sys_prefixes == ["/usr"]


def test_merge_of_one_session_is_a_copy(sessions):
    merged = merge_sessions([sessions[0]])
    assert merged.frame_records == sessions[0].frame_records
    assert merged.sample_count == sessions[0].sample_count


def test_merge_of_nothing_is_an_error():
    with pytest.raises(ValueError):
        merge_sessions([])


def test_merged_session_survives_json(sessions):
    merged = roundtrip(merge_sessions(sessions))
    assert merged.sample_count == sum(s.sample_count for s in sessions)
    text = console(merged)
    assert all(work.__name__ in text for work in WORKS), text


def copies(template: Session, count: int) -> list[Session]:
    """``count`` sessions sharing the template's records (cheap to build, distinct start times)."""
    return [
        Session(
            frame_records=template.frame_records,
            start_time=template.start_time + i,
            duration=template.duration,
            min_interval=template.min_interval,
            max_interval=template.max_interval,
            sample_count=template.sample_count,
            start_call_stack=template.start_call_stack,
            target_description=template.target_description,
            cpu_time=template.cpu_time,
            sys_path=template.sys_path,
            sys_prefixes=template.sys_prefixes,
        )
        for i in range(count)
    ]


@pytest.mark.parametrize("count", [1000, 5000])
def test_merge_is_linear(count):
    """Folding with pyinstrument's Session.combine is quadratic: on a small machine it takes about
    0.5 s for 1000 sessions of 200 records and 15 s for 4000; one pass takes milliseconds. One
    generous bound, at a size where quadratic cannot pass: the point is the shape, not the speed."""
    many = copies(synthetic(0), count)
    started = time.perf_counter()
    merged = merge_sessions(many)
    elapsed = time.perf_counter() - started
    assert len(merged.frame_records) == 200 * count
    assert merged.sample_count == 200 * count
    assert merged.duration == pytest.approx(0.2 * count)
    assert elapsed < 2.0, f"merging {count} sessions took {elapsed:.2f}s"


# --- StackAggregate ---


def test_worker_root_is_one_frame_per_pid():
    assert worker_root(42) == "Worker 42\x00<thread>\x0042"
    assert worker_root(42) != worker_root(43)


def test_aggregate_sums_time_per_distinct_stack_under_the_worker_root():
    aggregate = StackAggregate(worker_root(7))
    for i in range(4):
        aggregate.add(synthetic(i, records=200, distinct=20))  # each with its own thread root
    assert len(aggregate.times) == 20  # the roots differed; after replacement the stacks are the same
    assert all(stack[0] == worker_root(7) for stack in aggregate.times)
    assert all(seconds == pytest.approx(4 * 10 * 0.001) for seconds in aggregate.times.values())
    assert aggregate.samples == 800


def test_aggregate_of_real_sessions(sessions):
    root = worker_root(4321)
    aggregate = StackAggregate(root)
    for session in sessions:
        aggregate.add(session)

    # Frames lose their current-line attribute (the call tree merges on it anyway).
    def without_line(frame: str) -> str:
        head, *attributes = frame.split("\x01")
        return "\x01".join([head, *(a for a in attributes if not a.startswith("l"))])

    distinct = {tuple(map(without_line, stack[1:])) for s in sessions for stack, _ in s.frame_records}
    assert set(aggregate.times) == {(root, *rest) for rest in distinct}
    # One shared copy of each frame string, however many stacks hold it.
    copies = {id(frame) for stack in aggregate.times for frame in stack}
    assert len(copies) == len({frame for stack in aggregate.times for frame in stack})
    assert sum(aggregate.times.values()) == pytest.approx(sum(total_time(s) for s in sessions))
    assert aggregate.samples == sum(s.sample_count for s in sessions)
    assert aggregate.min_interval == min(s.min_interval for s in sessions)
    assert aggregate.max_interval == max(s.max_interval for s in sessions)


def test_aggregate_does_not_modify_its_inputs(sessions):
    before = [snapshot(s) for s in sessions]
    aggregate = StackAggregate(worker_root(1))
    for session in sessions:
        aggregate.add(session)
    aggregate.to_session(time.time(), 1.0, "window")
    assert [snapshot(s) for s in sessions] == before


def test_aggregate_to_session_renders(sessions):
    root = worker_root(4321)
    aggregate = StackAggregate(root)
    for session in sessions:
        aggregate.add(session)
    window = aggregate.to_session(1_700_000_000.0, 2.5, "worker 4321 window")
    assert window.start_call_stack == [root]  # an empty one breaks the renderers
    assert window.sample_count == aggregate.samples
    assert window.duration == 2.5 and window.start_time == 1_700_000_000.0
    assert len(window.frame_records) == len(aggregate.times)
    assert all(stack[0] == root for stack, _ in window.frame_records)
    assert total_time(window) == pytest.approx(sum(total_time(s) for s in sessions))
    text = console(window)
    assert "Worker 4321" in text and "worker 4321 window" in text
    for work in WORKS:
        assert work.__name__ in text, text
    html = HTMLRenderer().render(window)
    assert all(work.__name__ in html for work in WORKS)


def test_aggregate_session_loads_back_through_json(sessions):
    aggregate = StackAggregate(worker_root(99))
    for session in sessions:
        aggregate.add(session)
    window = aggregate.to_session(1_700_000_000.0, 1.0, "w")
    loaded = roundtrip(window)
    assert loaded.sample_count == window.sample_count
    assert loaded.start_call_stack == window.start_call_stack
    assert [(list(s), t) for s, t in loaded.frame_records] == [(list(s), t) for s, t in window.frame_records]
    text = console(loaded)
    assert all(work.__name__ in text for work in WORKS)


def test_windows_of_several_workers_merge_and_render(sessions):
    windows = []
    for pid, session in zip((11, 12, 13), sessions, strict=True):
        aggregate = StackAggregate(worker_root(pid))
        aggregate.add(session)
        windows.append(roundtrip(aggregate.to_session(1_700_000_000.0 + pid, 1.0, f"worker {pid}")))
    merged = merge_sessions(windows)
    assert merged.sample_count == sum(s.sample_count for s in sessions)
    text = console(merged)
    for pid, work in zip((11, 12, 13), WORKS, strict=True):
        assert f"Worker {pid}" in text
        assert work.__name__ in text


def test_aggregate_memory_bounded_by_distinct_stacks():
    aggregate = StackAggregate(worker_root(1))
    for i in range(500):
        aggregate.add(synthetic(i, records=200, distinct=20))
    assert len(aggregate.times) == 20
    assert aggregate.samples == 100_000
    assert sum(aggregate.times.values()) == pytest.approx(100.0)
