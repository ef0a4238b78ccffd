"""Regression test: a sample racing with stop() never changes the Session that stop() returned.

The GIL may switch threads at any bytecode. Before the fix, the sampler thread took its list of
captures under the lock, released it and then read ``sys._current_frames()``: if the request's
thread ran in between, stopped its capture and went on (to the end of the request, or to the next
one), the sample then appended a stack from after the request to the Session already handed to the
writer, and counted that time twice. This test forces that interleaving.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from gunicorn_pyinstrument.worker.engines import sampler as sampler_module
from gunicorn_pyinstrument.worker.engines.sampler import SamplerEngine

#: An interval at which the engine's own sampler thread never samples during the test.
NEVER = 3600.0


def after_the_request(release: threading.Event) -> None:
    release.wait(10)


def wait_inside(thread: threading.Thread, function: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(thread.ident)  # type: ignore[arg-type]
        while frame is not None:
            if frame.f_code.co_name == function:
                return
            frame = frame.f_back
        time.sleep(0.001)
    raise AssertionError(f"{thread.name} never reached {function}")


def functions(session: Any) -> set[str]:
    return {frame.split("\x00", 1)[0] for stack, _ in session.frame_records for frame in stack}


def test_a_sample_racing_with_stop_does_not_change_the_stopped_session(monkeypatch):
    engine = SamplerEngine(NEVER)
    go_on = threading.Event()
    stopped = threading.Event()
    release = threading.Event()
    result: dict[str, Any] = {}

    def request_thread() -> None:
        handle = engine.start("GET /raced")
        result["handle"] = handle
        go_on.wait(5)
        session = engine.stop(handle)
        result["session"] = session
        result["records_at_stop"] = len(session.frame_records)
        result["weights_at_stop"] = sum(w for _, w in session.frame_records)
        stopped.set()
        after_the_request(release)

    real_sys = sampler_module.sys

    class RacingSys:
        """``sys`` for the sampler module, whose ``_current_frames`` lets the request thread run
        first: as if the GIL had switched to it just before the frames were read."""

        def __getattr__(self, name: str) -> Any:
            return getattr(real_sys, name)

        @staticmethod
        def _current_frames() -> dict[int, Any]:
            go_on.set()  # the request thread finishes now ...
            # (an engine that makes stop() wait for the sample in progress never gets past this)
            if stopped.wait(0.3):
                wait_inside(thread, "after_the_request")  # ... and is already elsewhere
            return real_sys._current_frames()

    thread = threading.Thread(target=request_thread, name="raced", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while "handle" not in result and time.monotonic() < deadline:
            time.sleep(0.001)
        monkeypatch.setattr(sampler_module, "sys", RacingSys())
        engine.sample()
        monkeypatch.undo()
        assert stopped.wait(5)
        session = result["session"]
        assert "after_the_request" not in functions(session)
        assert len(session.frame_records) == result["records_at_stop"]
        assert sum(w for _, w in session.frame_records) == result["weights_at_stop"]
        assert result["weights_at_stop"] <= session.duration + 1e-9
    finally:
        release.set()
        thread.join(5)
