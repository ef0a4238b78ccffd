"""A local directory as a store: every file appears whole or not at all."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator

from ..directory import TEMP_PREFIX

_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


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
    def __init__(self, root: str, file_mode: int = 0o600, dir_fd: int | None = None) -> None:
        self.root = root
        self.file_mode = file_mode
        #: Set in a store given by :meth:`pinned`: names are then looked up in that directory.
        self._dir_fd = dir_fd

    def path(self, name: str) -> str:
        return os.path.join(self.root, check_name(name))

    def _where(self, name: str) -> str:
        return name if self._dir_fd is not None else os.path.join(self.root, name)

    def _fd_args(self, *keys: str) -> dict[str, int]:
        return {} if self._dir_fd is None else dict.fromkeys(keys, self._dir_fd)

    @contextlib.contextmanager
    def pinned(self, parent: LocalStore | None = None) -> Iterator[LocalStore]:
        """This store bound to its directory as it is now (``parent``: looked up in that pinned
        store's directory). Its files all go to that very directory, or fail with ENOENT if it
        is removed meanwhile: never to a directory made again at the same path, so a report is
        never split between a removed directory and its successor."""
        if parent is not None and parent._dir_fd is not None:
            fd = os.open(os.path.basename(self.root), _DIRECTORY_FLAGS, dir_fd=parent._dir_fd)
        else:
            fd = os.open(self.root, _DIRECTORY_FLAGS)
        try:
            yield LocalStore(self.root, self.file_mode, fd)
        finally:
            os.close(fd)

    def put(self, name: str, data: bytes) -> str:
        """Write to a hidden temporary file, then rename: readers never see half a file, and a
        process killed mid-write leaves only a ``.tmp-`` file that no listing reports."""
        final = self._where(check_name(name))
        temp = self._where(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(temp, flags, self.file_mode, **self._fd_args("dir_fd"))
        try:
            os.fchmod(fd, self.file_mode)  # exact mode, whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.close(fd)
            _unlink_quietly(temp, self._dir_fd)
            raise
        os.close(fd)
        try:
            os.replace(temp, final, **self._fd_args("src_dir_fd", "dst_dir_fd"))
        except BaseException:
            _unlink_quietly(temp, self._dir_fd)
            raise
        return self.path(name)

    def get(self, name: str) -> bytes:
        where = self._where(check_name(name))
        fd = os.open(where, os.O_RDONLY | os.O_CLOEXEC, **self._fd_args("dir_fd"))
        with open(fd, "rb") as f:
            return f.read()

    def remove(self, name: str) -> None:
        _unlink_quietly(self._where(check_name(name)), self._dir_fd)

    def names(self, suffix: str = "") -> Iterator[str]:
        """Names of finished files (temporaries excluded), in no particular order; none when the
        directory is missing or is not one."""
        try:
            entries = os.scandir(self.root)
        except (FileNotFoundError, NotADirectoryError):
            return
        with entries:
            for entry in entries:
                if not entry.name.startswith(".") and entry.name.endswith(suffix):
                    yield entry.name


def _unlink_quietly(path: str, dir_fd: int | None = None) -> None:
    with contextlib.suppress(FileNotFoundError):
        if dir_fd is None:
            os.unlink(path)
        else:
            os.unlink(path, dir_fd=dir_fd)
