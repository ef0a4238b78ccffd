"""A local directory as a store: every file appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

TEMP_PREFIX = ".tmp-"


def directory_mode(file_mode: int) -> int:
    """A directory mode that lets whoever may read the files also reach them (a sidecar in the
    group, with file mode 0640)."""
    mode = 0o700
    if file_mode & 0o040:
        mode |= 0o050
    if file_mode & 0o004:
        mode |= 0o005
    return mode


def ensure_directory(path: str, file_mode: int) -> None:
    """Create the directory (and parents) if missing, with the exact mode whatever the umask."""
    if os.path.isdir(path):
        return
    os.makedirs(path, mode=directory_mode(file_mode), exist_ok=True)
    os.chmod(path, directory_mode(file_mode))


def check_name(name: str) -> str:
    """Refuse anything that could leave the directory or hide as a temporary file."""
    if not name or name != os.path.basename(name) or name in (".", "..") or name.startswith("."):
        raise ValueError(f"unsafe file name {name!r}")
    if "\x00" in name or "/" in name or "\\" in name or len(name.encode("utf-8", "replace")) > 255:
        raise ValueError(f"unsafe file name {name!r}")
    return name


class LocalStore:
    def __init__(self, root: str, file_mode: int = 0o600) -> None:
        self.root = root
        self.file_mode = file_mode

    def path(self, name: str) -> str:
        return os.path.join(self.root, check_name(name))

    def put(self, name: str, data: bytes) -> str:
        """Write to a hidden temporary file, then rename: readers never see half a file, and a
        process killed mid-write leaves only a ``.tmp-`` file that no listing reports."""
        final = self.path(name)
        temp = os.path.join(self.root, f"{TEMP_PREFIX}{secrets.token_hex(8)}")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, self.file_mode)
        try:
            os.fchmod(fd, self.file_mode)  # exact mode, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            _unlink_quietly(temp)
            raise
        os.close(fd)
        try:
            os.replace(temp, final)
        except BaseException:
            _unlink_quietly(temp)
            raise
        return final

    def get(self, name: str) -> bytes:
        with open(self.path(name), "rb") as f:
            return f.read()

    def remove(self, name: str) -> None:
        _unlink_quietly(self.path(name))

    def names(self, suffix: str = "") -> Iterator[str]:
        """Names of finished files (temporaries excluded), in no particular order."""
        try:
            entries = os.scandir(self.root)
        except FileNotFoundError:
            return
        with entries:
            for entry in entries:
                if not entry.name.startswith(".") and entry.name.endswith(suffix):
                    yield entry.name


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
