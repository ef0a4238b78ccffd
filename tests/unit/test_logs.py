"""ThrottledLog: first occurrence, suppression within the interval, the count, broken loggers."""

from __future__ import annotations

import types

import pytest

from gunicorn_pyinstrument import logs
from gunicorn_pyinstrument.logs import PREFIX, ThrottledLog


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class RecordingLogger:
    def __init__(self) -> None:
        self.records: list[tuple[str, str, bool | None]] = []

    def error(self, msg, exc_info=None):
        self.records.append(("error", msg, exc_info))

    def warning(self, msg, exc_info=None):
        self.records.append(("warning", msg, exc_info))

    def info(self, msg):
        self.records.append(("info", msg, None))


class BrokenLogger:
    def __init__(self) -> None:
        self.calls = 0

    def _raise(self, *args, **kwargs):
        self.calls += 1
        raise OSError("log handler is gone")

    error = warning = info = _raise


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    # Only the logs module sees the fake clock.
    monkeypatch.setattr(logs, "time", types.SimpleNamespace(monotonic=c))
    return c


def test_first_then_suppressed_then_count(clock):
    log = RecordingLogger()
    throttled = ThrottledLog(log, interval=60)
    throttled.error("write", "could not write")
    assert log.records == [("error", PREFIX + "could not write", True)]

    for dt in (1, 30, 59.999):
        clock.now = 1000 + dt
        throttled.error("write", "could not write")
    assert len(log.records) == 1

    clock.now = 1060
    throttled.error("write", "could not write")
    assert log.records[-1] == (
        "error",
        PREFIX + "could not write (3 more since the last report of this problem)",
        True,
    )

    # The count starts again from that report.
    clock.now = 1061
    throttled.error("write", "could not write")
    clock.now = 1200
    throttled.error("write", "could not write")
    assert [r[1] for r in log.records[2:]] == [
        PREFIX + "could not write (1 more since the last report of this problem)"
    ]


def test_no_count_when_nothing_was_suppressed(clock):
    log = RecordingLogger()
    throttled = ThrottledLog(log, interval=10)
    throttled.warning("full", "queue full")
    clock.now += 10
    throttled.warning("full", "queue full")
    assert log.records == [("warning", PREFIX + "queue full", False)] * 2


def test_keys_are_throttled_independently(clock):
    log = RecordingLogger()
    throttled = ThrottledLog(log, interval=60)
    throttled.error("a", "problem a", exc_info=False)
    throttled.error("b", "problem b", exc_info=False)
    throttled.warning("a", "problem a again")
    assert [r[1] for r in log.records] == [PREFIX + "problem a", PREFIX + "problem b"]


def test_info_is_never_throttled(clock):
    log = RecordingLogger()
    throttled = ThrottledLog(log)
    throttled.info("ready")
    throttled.info("ready")
    assert log.records == [("info", PREFIX + "ready", None)] * 2


def test_survives_a_logger_that_raises(clock):
    broken = BrokenLogger()
    throttled = ThrottledLog(broken, interval=60)
    throttled.error("k", "boom")
    throttled.warning("w", "careful")
    throttled.info("hello")
    assert broken.calls == 3
    # Throttling still works: a repeat within the interval does not even reach the logger.
    throttled.error("k", "boom")
    assert broken.calls == 3
    clock.now += 60
    throttled.error("k", "boom")
    assert broken.calls == 4


def test_survives_an_object_that_is_not_a_logger(clock):
    throttled = ThrottledLog(object())
    throttled.error("k", "boom")
    throttled.warning("k2", "careful")
    throttled.info("hello")


def test_fallback_logger_is_gunicorns():
    assert logs.fallback_logger().name == "gunicorn.error"
