"""The runtime gate: open in the schedule's window, switched by the control file (looked up at most
once per check interval, on the monotonic clock), and both needed when both are set."""

from __future__ import annotations

from fakes import Clock, Exists, never_exists

from gunicorn_pyinstrument.settings import Schedule
from gunicorn_pyinstrument.worker.switch import CONTROL_CHECK_SECONDS, Gate

CONTROL = "/run/profiling.on"
THIRTY_IN_TEN = Schedule(duration=30.0, period=600.0)


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
