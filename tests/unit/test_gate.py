"""The runtime gate: the schedule (aligned to the epoch), the control file (looked up at most once a
second) and how Selector.decide combines them with the token."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunicorn_pyinstrument.settings import Schedule, load, parse_schedule
from gunicorn_pyinstrument.worker.choosing import TRIGGER_SAMPLE, TRIGGER_TOKEN, Selector
from gunicorn_pyinstrument.worker.switch import CONTROL_CHECK_SECONDS, Gate

TOKEN = "gate-token-0123456789"
CONTROL = "/run/profiling.on"


class Clock:
    """A settable clock (epoch or monotonic)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Exists:
    """A fake ``os.path.exists``: answers ``present`` and records every path asked about."""

    def __init__(self, present: bool = False) -> None:
        self.present = present
        self.calls: list[str] = []

    def __call__(self, path: str) -> bool:
        self.calls.append(path)
        return self.present


def never_exists(path: str) -> bool:
    raise AssertionError("exists() must not be called without a control file")


# --- Schedule.active ---

THIRTY_IN_TEN = Schedule(duration=30.0, period=600.0)


def test_parsed_schedule():
    assert parse_schedule("30s/10m") == THIRTY_IN_TEN
    assert parse_schedule("0.5m/600s") == THIRTY_IN_TEN


@pytest.mark.parametrize(
    ("now", "active"),
    [
        (0.0, True),  # the epoch itself starts a window
        (29.999, True),
        (30.0, False),  # the end is excluded
        (30.001, False),
        (599.999, False),
        (600.0, True),  # the next period
        (615.5, True),
        (630.0, False),
        (1_700_000_400.0, True),  # 1_700_000_400 % 600 == 0: aligned to the epoch, not to start-up
        (1_700_000_429.9, True),
        (1_700_000_430.0, False),
        (1_700_000_399.0, False),
    ],
)
def test_schedule_window_at_the_start_of_each_period(now, active):
    assert THIRTY_IN_TEN.active(now) is active


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_schedule_active_is_now_modulo_period_below_duration(now):
    assert THIRTY_IN_TEN.active(now) is (now % 600 < 30)


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_schedule_with_duration_equal_to_period_is_always_active(now):
    assert parse_schedule("1h/1h").active(now)


def test_sub_second_schedule():
    schedule = parse_schedule("500ms/2s")
    assert [schedule.active(t) for t in (0.0, 0.499, 0.5, 1.9, 2.0, 2.25)] == [
        True,
        True,
        False,
        False,
        True,
        True,
    ]


# --- Gate: schedule ---


def test_gate_without_schedule_or_control_file_is_always_open():
    gate = Gate(exists=never_exists)
    assert gate.switched_on() and gate.in_window() and gate.is_open()


def test_gate_follows_the_injected_clock_for_the_schedule():
    clock = Clock(1_700_000_400.0)
    gate = Gate(THIRTY_IN_TEN, clock=clock, exists=never_exists)
    assert gate.in_window() and gate.is_open()
    clock.now += 30
    assert not gate.in_window() and not gate.is_open()
    assert gate.switched_on()  # the schedule is not the switch
    clock.now += 570
    assert gate.is_open()


# --- Gate: control file ---


def test_control_file_looked_up_at_most_once_per_check_interval():
    mono, exists = Clock(100.0), Exists(present=True)
    gate = Gate(control_file=CONTROL, monotonic=mono, exists=exists)
    for _ in range(1000):
        assert gate.switched_on()
    assert exists.calls == [CONTROL]
    # Many more asks spread over just under the interval: still the one look-up.
    for step in range(100):
        mono.now = 100.0 + step * (CONTROL_CHECK_SECONDS / 100) * 0.999
        gate.is_open()
    assert len(exists.calls) == 1
    mono.now = 100.0 + CONTROL_CHECK_SECONDS
    gate.is_open()
    assert len(exists.calls) == 2


def test_control_file_lookups_bounded_by_elapsed_time():
    mono, exists = Clock(0.0), Exists(present=True)
    gate = Gate(control_file=CONTROL, monotonic=mono, exists=exists)
    # 10 simulated seconds, asked 10_000 times a second.
    for i in range(100_000):
        mono.now = i / 10_000
        gate.switched_on()
    assert 10 <= len(exists.calls) <= 10 / CONTROL_CHECK_SECONDS + 1


def test_switching_on_and_off_follows_the_file_after_the_check_interval():
    mono, exists = Clock(50.0), Exists(present=False)
    gate = Gate(control_file=CONTROL, monotonic=mono, exists=exists)
    assert not gate.switched_on() and not gate.is_open()

    exists.present = True  # touch
    mono.now += CONTROL_CHECK_SECONDS / 2
    assert not gate.switched_on()  # not looked at again yet
    mono.now += CONTROL_CHECK_SECONDS / 2
    assert gate.switched_on() and gate.is_open()

    exists.present = False  # rm
    mono.now += CONTROL_CHECK_SECONDS * 0.9
    assert gate.switched_on()
    mono.now += CONTROL_CHECK_SECONDS * 0.2
    assert not gate.switched_on() and not gate.is_open()
    assert len(exists.calls) == 3


def test_control_file_check_uses_the_monotonic_clock_not_the_wall_clock():
    wall, mono, exists = Clock(1_700_000_400.0), Clock(0.0), Exists(present=False)
    gate = Gate(control_file=CONTROL, clock=wall, monotonic=mono, exists=exists)
    assert not gate.switched_on()
    exists.present = True
    wall.now += 3600  # the wall clock jumps; the monotonic one did not move
    assert not gate.switched_on()
    assert len(exists.calls) == 1


def test_schedule_and_control_file_both_needed():
    wall, mono, exists = Clock(0.0), Clock(0.0), Exists(present=True)
    gate = Gate(THIRTY_IN_TEN, CONTROL, clock=wall, monotonic=mono, exists=exists)
    assert gate.is_open()
    wall.now = 45.0  # out of the window
    assert not gate.is_open()
    wall.now = 600.0
    exists.present = False
    mono.now = 5.0
    assert not gate.is_open()


# --- Selector.decide with a gate ---


def selector(gate: Gate, rate: float = 1.0) -> Selector:
    return Selector(rate, token=TOKEN.encode(), gate=gate)


def test_control_file_absent_nothing_profiled_even_with_the_token():
    exists = Exists(present=False)
    sel = selector(Gate(control_file=CONTROL, monotonic=Clock(0.0), exists=exists))
    assert sel.decide("/alpha") is None
    assert sel.decide("/alpha", TOKEN) is None
    assert sel.decide("/alpha", "wrong-token-0123456789") is None


def test_control_file_present_sampled_and_token_requests_profiled():
    sel = selector(Gate(control_file=CONTROL, monotonic=Clock(0.0), exists=Exists(present=True)))
    assert sel.decide("/alpha") == TRIGGER_SAMPLE
    assert sel.decide("/alpha", TOKEN) == TRIGGER_TOKEN


def test_control_file_toggles_selection_after_the_check_interval():
    mono, exists = Clock(0.0), Exists(present=False)
    sel = selector(Gate(control_file=CONTROL, monotonic=mono, exists=exists))
    assert sel.decide("/a", TOKEN) is None
    exists.present = True
    mono.now = CONTROL_CHECK_SECONDS
    assert sel.decide("/a") == TRIGGER_SAMPLE
    exists.present = False
    mono.now = 2 * CONTROL_CHECK_SECONDS
    assert sel.decide("/a", TOKEN) is None


@pytest.mark.parametrize("rate", [1.0, 0.5, 0.0])
def test_schedule_closed_sampled_requests_skipped_but_the_token_works(rate):
    sel = selector(Gate(THIRTY_IN_TEN, clock=Clock(1_700_000_500.0), exists=never_exists), rate)
    assert sel.decide("/alpha") is None
    assert sel.decide("/alpha", "not-the-token-0123456") is None
    assert sel.decide("/alpha", TOKEN) == TRIGGER_TOKEN


def test_schedule_open_sampled_requests_profiled():
    sel = selector(Gate(THIRTY_IN_TEN, clock=Clock(1_700_000_410.0), exists=never_exists))
    assert sel.decide("/alpha") == TRIGGER_SAMPLE


def test_selector_from_settings_builds_the_gate(tmp_path):
    control = tmp_path / "on"
    settings = load(
        {
            "GUNICORN_PYINSTRUMENT_SCHEDULE": "30s/10m",
            "GUNICORN_PYINSTRUMENT_CONTROL_FILE": str(control),
            "GUNICORN_PYINSTRUMENT_TOKEN": TOKEN,
        }
    )
    sel = Selector.from_settings(settings)
    assert sel.gate.schedule == THIRTY_IN_TEN
    assert sel.gate.control_file == str(control)
    assert sel.decide("/", TOKEN) is None  # the file does not exist
