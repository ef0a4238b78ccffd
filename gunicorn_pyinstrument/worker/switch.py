"""The runtime switch, for both modes: the schedule (``30s/10m``) and the control file, read cheaply.

Pure logic: no gunicorn, no pyinstrument.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..settings import Schedule

CONTROL_CHECK_SECONDS = 1.0


class Gate:
    """Is profiling switched on right now: the control file (the runtime switch) and the schedule.

    The file's existence is looked up at most once per CONTROL_CHECK_SECONDS, whatever the request
    rate; in between, the answer costs a clock read."""

    def __init__(
        self,
        schedule: Schedule | None = None,
        control_file: str | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        exists: Callable[[str], bool] = os.path.exists,
    ) -> None:
        self.schedule = schedule
        self.control_file = control_file
        self._clock = clock
        self._monotonic = monotonic
        self._exists = exists
        self._next_check = float("-inf")
        self._switched_on = control_file is None

    def switched_on(self) -> bool:
        if self.control_file is None:
            return True
        now = self._monotonic()
        if now >= self._next_check:
            self._next_check = now + CONTROL_CHECK_SECONDS
            self._switched_on = self._exists(self.control_file)
        return self._switched_on

    def in_window(self) -> bool:
        return self.schedule is None or self.schedule.active(self._clock())

    def is_open(self) -> bool:
        return self.switched_on() and self.in_window()
