"""The sampler engine in-process: what a capture records, how it is weighted, that pyinstrument
renders it, and that captures never mix threads.

Most tests drive ``engine.sample()`` by hand on an engine whose own sampler thread practically never
wakes (an interval of an hour: the thread it starts on first use just sleeps), so what is recorded
does not depend on the machine's load. A few let the real sampler thread run at a short interval.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer, PstatsRenderer, SpeedscopeRenderer
from pyinstrument.session import Session

from gunicorn_pyinstrument.worker.engines import sampler as sampler_module
from gunicorn_pyinstrument.worker.engines.frames import thread_root
from gunicorn_pyinstrument.worker.engines.sampler import SamplerEngine

#: An interval at which the engine's own sampler thread never samples during a test.
NEVER = 3600.0


def name_of(frame_info: str) -> str:
    return frame_info.split("\x00", 1)[0]


def names(stack: list[str]) -> list[str]:
    return [name_of(f) for f in stack]


def time_in(session: Session, function: str) -> float:
    """Seconds attributed to ``function``: the weights of the records whose stack contains it."""
    return sum(w for stack, w in session.frame_records if function in names(stack))


def root_of(thread: threading.Thread) -> str:
    """pyinstrument's root frame for a thread (also once it has exited)."""
    return f"{thread.name}\x00<thread>\x00{thread.ident}"


def functions(session: Session) -> set[str]:
    return {name_of(f) for stack, _ in session.frame_records for f in stack}


# --- named workloads (their names are what the tests look for) ---


def busy_alpha(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(100))


def busy_beta(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(100))


def parked_alpha(release: threading.Event) -> None:
    release.wait(10)


def parked_beta(release: threading.Event) -> None:
    release.wait(10)


def parked_gamma(release: threading.Event) -> None:
    release.wait(10)


def after_the_request(release: threading.Event) -> None:
    release.wait(10)


class Recorded(threading.Thread):
    """A thread that starts a capture of itself, runs ``work`` and stops the capture."""

    def __init__(self, engine: SamplerEngine, work: Callable[[], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.engine = engine
        self.work = work
        self.handle: Any = None
        self.session: Session | None = None
        self.elapsed = 0.0
        self.started_capture = threading.Event()

    def run(self) -> None:
        self.handle = self.engine.start(f"GET /{self.name}")
        self.started_capture.set()
        t0 = time.perf_counter()
        self.work()
        self.elapsed = time.perf_counter() - t0
        self.session = self.engine.stop(self.handle)


class Parked(threading.Thread):
    """A thread waiting in a named function until released (no capture of its own)."""

    def __init__(self, function: Callable[[threading.Event], None], name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.function = function
        self.release = threading.Event()

    def run(self) -> None:
        self.function(self.release)


def wait_inside(thread: threading.Thread, function: str, timeout: float = 5.0) -> None:
    """Until ``thread``'s current stack contains ``function``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident)
        while frame is not None:
            if frame.f_code.co_name == function:
                return
            frame = frame.f_back
        time.sleep(0.001)
    raise AssertionError(f"{thread.name} never reached {function}")


def sample_by_hand(engine: SamplerEngine, times: int, gap: float = 0.01, **kwargs: Any) -> None:
    for _ in range(times):
        time.sleep(gap)
        engine.sample(**kwargs)


def parked_capture(engine: SamplerEngine, function: Callable[[threading.Event], None], name: str):
    """A Recorded thread parked in ``function`` once its capture has started; (thread, release)."""
    release = threading.Event()
    thread = Recorded(engine, lambda: function(release), name)
    thread.start()
    assert thread.started_capture.wait(5)
    wait_inside(thread, function.__name__)
    return thread, release


# --- what a capture records ---


def test_a_capture_records_the_running_function_root_first_weighted_by_wall_time():
    engine = SamplerEngine(0.002)
    thread = Recorded(engine, lambda: busy_alpha(0.15), "runner")
    thread.start()
    thread.join(10)
    session = thread.session
    assert session is not None

    records = session.frame_records
    # 0.15 s at 2 ms: dozens on a quiet machine; a starved sampler thread still takes a few.
    assert len(records) >= 2, records
    assert session.sample_count == len(records)
    root = root_of(thread)
    for stack, weight in records:
        assert stack[0] == root  # root first ...
        assert weight > 0
        order = names(stack)
        if "busy_alpha" in order:  # ... then outward in: threading's bootstrap, run, the workload
            assert order.index("_bootstrap_inner") < order.index("run") < order.index("busy_alpha")
            assert order.index("busy_alpha") == len(order) - 1 or order[-1] == "<genexpr>"

    # Weighted by wall time: the weights add up to the capture's duration (the time the thread
    # spent between start() and stop()) less the stretch after the last sample, which is charged
    # to nothing; nearly all of it in busy_alpha.
    total = sum(w for _, w in records)
    assert session.duration - 0.02 <= total <= session.duration + 1e-6
    assert session.duration == pytest.approx(thread.elapsed, abs=0.02)
    # Wall-clock: at least the 0.15 s of work (a busy machine only stretches it), at most it all.
    assert 0.15 * 0.9 <= time_in(session, "busy_alpha") <= session.duration + 1e-6
    assert session.min_interval == session.max_interval == 0.002
    assert session.cpu_time == 0.0
    assert session.target_description == "GET /runner"

    # The start stack is where start() was called from: the thread's own run(), under its root.
    assert session.start_call_stack[0] == root
    assert names(session.start_call_stack)[-1] == "run"
    assert "gunicorn_pyinstrument" not in session.start_call_stack[-1]


def test_manual_samples_are_weighted_by_the_time_since_the_previous_one():
    engine = SamplerEngine(NEVER)
    thread, release = parked_capture(engine, parked_alpha, "parked")
    t0 = time.perf_counter()
    sample_by_hand(engine, 3, gap=0.03)
    elapsed = time.perf_counter() - t0
    release.set()
    thread.join(5)
    session = thread.session
    assert session is not None

    assert session.sample_count == 3
    assert all("parked_alpha" in names(stack) for stack, _ in session.frame_records)
    weights = [w for _, w in session.frame_records]
    assert weights[1] == pytest.approx(0.03, abs=0.02)
    # The stretch from the last sample to stop() is charged to nothing.
    assert sum(weights) <= session.duration + 1e-6
    assert session.duration >= elapsed


def test_a_capture_shorter_than_the_interval_is_an_empty_session():
    engine = SamplerEngine(NEVER)
    handle = engine.start("GET /quick")
    session = engine.stop(handle)
    assert session.frame_records == []
    assert session.sample_count == 0
    assert 0 <= session.duration < 1
    assert ConsoleRenderer().render(session)  # renders (as "no samples"), never raises


def test_pyinstrument_renders_and_round_trips_a_sampler_session(tmp_path):
    engine = SamplerEngine(0.002)
    thread = Recorded(engine, lambda: busy_alpha(0.3), "renderme")
    thread.start()
    thread.join(10)
    session = thread.session
    assert session is not None and session.frame_records

    text = ConsoleRenderer(unicode=True, color=False).render(session)
    assert "busy_alpha" in text
    html = HTMLRenderer().render(session)
    assert "<html" in html.lower()
    speedscope = json.loads(SpeedscopeRenderer().render(session))
    assert any(frame["name"] == "busy_alpha" for frame in speedscope["shared"]["frames"])
    assert PstatsRenderer().render(session)

    root = session.root_frame()
    assert root is not None
    assert session.duration - 0.02 <= root.time <= session.duration + 1e-6

    path = tmp_path / "s.pyisession"
    session.save(path)
    loaded = Session.load(path)
    assert [(list(s), w) for s, w in loaded.frame_records] == [(list(s), w) for s, w in session.frame_records]
    assert loaded.start_call_stack == session.start_call_stack
    assert "busy_alpha" in ConsoleRenderer(unicode=True, color=False).render(loaded)


def test_sampler_thread_parks_when_idle_and_wakes_on_the_next_capture(monkeypatch):
    monkeypatch.setattr(sampler_module, "IDLE_PARK_SECONDS", 0.1)
    engine = SamplerEngine(0.005)
    wakes: list[float] = []
    real_sleep = engine._sleep

    def counting_sleep(seconds: float) -> None:
        real_sleep(seconds)
        wakes.append(time.monotonic())

    engine._sleep = counting_sleep
    capture = engine.start("GET /first")
    time.sleep(0.1)
    first = engine.stop(capture)
    assert first.sample_count > 0
    # Through short gaps between captures it keeps its pace ...
    time.sleep(0.05)
    assert wakes and time.monotonic() - wakes[-1] < 0.05
    # ... and stops waking once nothing has been captured for IDLE_PARK_SECONDS.
    time.sleep(0.3)
    parked_at = len(wakes)
    time.sleep(0.2)
    assert len(wakes) == parked_at
    capture = engine.start("GET /second")
    time.sleep(0.1)
    second = engine.stop(capture)
    assert len(wakes) > parked_at
    assert second.sample_count > 0


# --- several threads ---


def test_start_worker_records_every_thread_but_the_excluded_one():
    engine = SamplerEngine(NEVER)
    parked = [Parked(f, f.__name__) for f in (parked_alpha, parked_beta, parked_gamma)]
    for thread in parked:
        thread.start()
    for thread in parked:
        wait_inside(thread, thread.name)
        assert thread_root(thread.ident) == root_of(thread)  # pyinstrument's: name, <thread>, ident
    try:
        capture = engine.start_worker("worker 1")
        me = threading.get_ident()
        t0 = time.perf_counter()
        sample_by_hand(engine, 4, exclude=me)
        elapsed = time.perf_counter() - t0
        session = engine.stop(capture)
    finally:
        for thread in parked:
            thread.release.set()
            thread.join(5)

    assert session.start_call_stack == ["[all threads]"]
    by_root: dict[str, list[tuple[list[str], float]]] = {}
    for stack, weight in session.frame_records:
        by_root.setdefault(stack[0], []).append((stack, weight))
    assert thread_root(me) not in by_root
    for thread in parked:
        records = by_root[root_of(thread)]
        assert len(records) == 4
        assert all(thread.name in names(stack) for stack, _ in records)
        # and nothing of the other parked threads under this thread's root
        others = {t.name for t in parked} - {thread.name}
        assert not any(others & set(names(stack)) for stack, _ in records)
        # each thread's records cover the capture: wall time, per thread
        assert sum(w for _, w in records) == pytest.approx(elapsed, abs=0.02)


def test_discard_stops_recording():
    engine = SamplerEngine(NEVER)
    thread, release = parked_capture(engine, parked_alpha, "discarded")
    try:
        engine.sample()
        capture = thread.handle
        assert len(capture.records) == 1
        engine.discard(capture)
        sample_by_hand(engine, 3, gap=0.001)
        assert len(capture.records) == 1
        assert len(capture.records) == 1
        engine.discard(capture)  # twice is harmless
    finally:
        release.set()
        thread.join(5)

    # a discarded all-threads capture too
    capture = engine.start_worker("worker")
    engine.discard(capture)
    engine.sample()
    assert capture.records == []


def test_captures_of_two_threads_never_mix():
    engine = SamplerEngine(NEVER)
    alpha, release_alpha = parked_capture(engine, parked_alpha, "alpha")
    beta, release_beta = parked_capture(engine, parked_beta, "beta")
    try:
        sample_by_hand(engine, 5, gap=0.002)
    finally:
        release_alpha.set()
        release_beta.set()
        alpha.join(5)
        beta.join(5)
    for thread, own, other in ((alpha, "parked_alpha", "parked_beta"), (beta, "parked_beta", "parked_alpha")):
        session = thread.session
        assert session is not None
        assert session.sample_count == 5
        assert {stack[0] for stack, _ in session.frame_records} == {root_of(thread)}
        assert own in functions(session)
        assert other not in functions(session)


def test_concurrent_busy_threads_with_the_real_sampler_thread():
    engine = SamplerEngine(0.002)
    alpha = Recorded(engine, lambda: busy_alpha(0.1), "alpha")
    beta = Recorded(engine, lambda: busy_beta(0.1), "beta")
    alpha.start()
    beta.start()
    alpha.join(10)
    beta.join(10)
    for thread, own, other in ((alpha, "busy_alpha", "busy_beta"), (beta, "busy_beta", "busy_alpha")):
        session = thread.session
        assert session is not None and session.frame_records
        assert {stack[0] for stack, _ in session.frame_records} == {root_of(thread)}
        assert own in functions(session)
        assert other not in functions(session)
        assert session.duration - 0.05 <= sum(w for _, w in session.frame_records) <= session.duration + 1e-6


# --- the budget (MAX_OVERHEAD) ---


def test_the_budget_sets_the_interval_from_the_cpu_per_wake():
    engine = SamplerEngine(0.01, max_overhead=0.01)
    target = 0.01 * sampler_module.BUDGET_TARGET
    # Cheap wakes: the interval asked for, the fastest.
    engine._adjust(cpu=25 * 20e-6, wakes=25)
    assert engine.current == 0.01
    # Dear ones: the interval at which they use the budget ...
    engine._adjust(cpu=25 * 300e-6, wakes=25)
    assert engine.current == pytest.approx(300e-6 / target)
    # ... never slower than the floor ...
    engine._adjust(cpu=3 * 0.01, wakes=3)
    assert engine.current == sampler_module.FLOOR_INTERVAL
    # ... and back to the interval as soon as they are cheap again.
    engine._adjust(cpu=3 * 20e-6, wakes=3)
    assert engine.current == 0.01
    engine._adjust(cpu=0.0, wakes=0)  # a period without a wake changes nothing
    assert engine.current == 0.01


def test_no_budget_and_an_interval_slower_than_the_floor():
    unbounded = SamplerEngine(0.01)
    unbounded._adjust(cpu=1.0, wakes=1)
    assert unbounded.current == 0.01
    slow = SamplerEngine(0.5, max_overhead=0.001)
    slow._adjust(cpu=1.0, wakes=1)
    assert slow.current == 0.5  # the floor is never faster than the interval asked for


def test_the_sampler_thread_keeps_to_the_budget_and_counts_its_cpu(monkeypatch):
    """The real sampler thread: dear samples (made to burn CPU) slow it down to what the budget
    allows within an adjustment period or two, and its CPU over the capture is counted."""
    monkeypatch.setattr(sampler_module, "ADJUST_SECONDS", 0.05)
    engine = SamplerEngine(0.002, max_overhead=0.05)
    real_sample = engine.sample

    def dear_sample(exclude: int | None = None) -> None:
        real_sample(exclude=exclude)
        busy_alpha(0.001)  # 1 ms of CPU per sample: at 500 Hz, 50 % of a CPU

    engine.sample = dear_sample  # type: ignore[method-assign]
    handle = engine.start("GET /dear")
    time.sleep(0.6)
    session = engine.stop(handle)
    sampling = engine.sampling(handle, session, session.duration)
    # 1 ms per wake within a 5 % budget (aimed at 90 % of it): about 22 ms apart, 45 Hz, against
    # the 500 Hz asked for.
    assert engine.current >= 0.015
    assert sampling.rate is not None and sampling.rate < 150
    assert sampling.cpu is not None and 0 < sampling.cpu < 0.3
    assert sampling.share is not None and 0 < sampling.share <= 1
    assert sampling.over_budget is None  # for windows only


# --- the request path ---


def test_the_start_stack_is_walked_at_stop_and_a_discarded_capture_lets_go_of_its_frame():
    engine = SamplerEngine(NEVER)

    def request_handler() -> tuple[Any, Any]:
        kept = engine.start("GET /kept")
        dropped = engine.start("GET /dropped")
        return kept, dropped

    kept, dropped = request_handler()
    # Nothing walked yet: only the frame of the caller is held.
    assert kept._start_call_stack is None and kept.caller is not None
    engine.discard(dropped)
    assert dropped.caller is None
    session = engine.stop(kept)
    assert kept.caller is None
    assert names(session.start_call_stack)[-1] == "request_handler"
    assert session.start_call_stack[0] == thread_root(threading.get_ident())
