"""One helper per directory: the lock a helper started with ``--exclusive`` holds, and a second one
that finds it held exits at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from gunicorn_pyinstrument.directory import HELPER_LOCK
from gunicorn_pyinstrument.helper.lock import held, hold
from gunicorn_pyinstrument.helper.process import HelperProcess

REPO = Path(__file__).resolve().parents[3]


def test_held_while_a_descriptor_holds_it_and_free_once_closed(tmp_path):
    assert not held(str(tmp_path))  # looking does not take it
    fd = hold(str(tmp_path))
    assert fd is not None
    assert held(str(tmp_path)) and hold(str(tmp_path)) is None
    os.close(fd)
    assert not held(str(tmp_path))
    assert (tmp_path / HELPER_LOCK).stat().st_mode & 0o777 == 0o600


def test_a_second_exclusive_helper_exits_at_once(tmp_path):
    first = HelperProcess(str(tmp_path), exclusive=True)
    first.start()
    try:
        deadline = time.monotonic() + 15
        while not held(str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert held(str(tmp_path))
        command = [sys.executable, "-m", "gunicorn_pyinstrument.helper", "--exclusive", str(tmp_path)]
        second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=30)
        assert (second.returncode, second.stderr) == (0, "")
        assert first.running()
    finally:
        assert first.stop(10)
    assert not held(str(tmp_path))  # let go when it exits
