"""Logging that never floods: one line per problem per interval, through gunicorn's logger."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

PREFIX = "gunicorn-pyinstrument: "


def fallback_logger() -> Any:
    return logging.getLogger("gunicorn.error")


class ThrottledLog:
    """Logs the first occurrence of each problem, then at most once per ``interval`` seconds,
    saying how many were suppressed in between."""

    def __init__(self, log: Any, interval: float = 60.0) -> None:
        self.log = log
        self.interval = interval
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def _allow(self, key: str) -> int | None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._suppressed[key] = self._suppressed.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._suppressed.pop(key, 0)

    def _emit(self, level: str, key: str, message: str, exc_info: bool) -> None:
        suppressed = self._allow(key)
        if suppressed is None:
            return
        if suppressed:
            message += f" ({suppressed} more since the last report of this problem)"
        # A broken logger must not break a request either.
        with contextlib.suppress(Exception):
            getattr(self.log, level)(PREFIX + message, exc_info=exc_info)

    def error(self, key: str, message: str, exc_info: bool = True) -> None:
        self._emit("error", key, message, exc_info)

    def warning(self, key: str, message: str) -> None:
        self._emit("warning", key, message, False)

    def info(self, message: str) -> None:
        with contextlib.suppress(Exception):
            self.log.info(PREFIX + message)
