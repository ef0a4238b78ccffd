"""Stand-ins for what the code under test talks to: a settable clock, ``os.path.exists``, a logger
that records, and an object store that can be switched off."""

from __future__ import annotations

from gunicorn_pyinstrument.stores.s3 import MissingObject, StoreError


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


class RecordingLogger:
    def __init__(self) -> None:
        self.records: list[tuple[str, str]] = []

    def error(self, msg, exc_info=None):
        self.records.append(("error", msg))

    def warning(self, msg, exc_info=None):
        self.records.append(("warning", msg))

    def info(self, msg):
        self.records.append(("info", msg))


class MemoryStore:
    """put/get/list like S3Store, in memory; ``down`` makes every call fail like an unreachable store."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[str] = []
        self.gets: list[str] = []
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreError("cannot reach the store: Connection refused")

    def put(self, key: str, data: bytes) -> None:
        self._check()
        self.objects[key] = data
        self.puts.append(key)

    def get(self, key: str) -> bytes:
        self._check()
        self.gets.append(key)
        if key not in self.objects:
            raise MissingObject(f"no {key}")
        return self.objects[key]

    def list(self, prefix: str):
        self._check()
        return sorted((k, len(v)) for k, v in self.objects.items() if k.startswith(prefix))
