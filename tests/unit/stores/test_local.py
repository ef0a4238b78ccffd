"""LocalStore: exact modes, atomic replacement, no leftovers, safe names."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from gunicorn_pyinstrument.directory import TEMP_PREFIX
from gunicorn_pyinstrument.stores import LocalStore
from gunicorn_pyinstrument.stores.local import check_name


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def mode_of(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask", [0o077, 0o000, 0o022, 0o777])
@pytest.mark.parametrize("file_mode", [0o600, 0o640, 0o644, 0o660, 0o666])
def test_put_sets_the_exact_mode_whatever_the_umask(tmp_path, umask, mask, file_mode):
    store = LocalStore(str(tmp_path), file_mode)
    umask(mask)
    path = store.put("report.html", b"<html>")
    assert path == str(tmp_path / "report.html")
    assert mode_of(path) == file_mode
    # A replacement gets the mode too, even if the old file had another one.
    os.chmod(path, 0o604)
    store.put("report.html", b"<html>2")
    assert mode_of(path) == file_mode


def test_put_replaces_and_leaves_no_temporary(tmp_path):
    store = LocalStore(str(tmp_path))
    store.put("a.json", b"one")
    store.put("a.json", b"two")
    assert (tmp_path / "a.json").read_bytes() == b"two"
    assert store.get("a.json") == b"two"
    assert os.listdir(tmp_path) == ["a.json"]


def test_put_writes_everything_despite_short_writes(tmp_path, monkeypatch):
    real_write = os.write
    calls = []

    def short_write(fd, data):
        calls.append(len(data))
        return real_write(fd, bytes(data[:1000]))

    monkeypatch.setattr(os, "write", short_write)
    data = os.urandom(10_500)
    LocalStore(str(tmp_path)).put("big.bin", data)
    assert (tmp_path / "big.bin").read_bytes() == data
    assert len(calls) == 11


def test_put_of_empty_data(tmp_path):
    LocalStore(str(tmp_path)).put("empty", b"")
    assert (tmp_path / "empty").read_bytes() == b""


@pytest.mark.parametrize("existing", [False, True])
def test_failure_mid_write_leaves_no_temporary_and_no_new_file(tmp_path, monkeypatch, existing):
    store = LocalStore(str(tmp_path))
    if existing:
        store.put("r.html", b"old")
    real_write = os.write
    state = {"calls": 0}

    def failing_write(fd, data):
        state["calls"] += 1
        if state["calls"] == 1:
            return real_write(fd, bytes(data[:3]))  # some bytes reach the temporary file first
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", failing_write)
    with pytest.raises(OSError) as info:
        store.put("r.html", b"new content")
    assert info.value.errno == errno.ENOSPC
    assert state["calls"] == 2
    if existing:
        assert os.listdir(tmp_path) == ["r.html"]
        assert (tmp_path / "r.html").read_bytes() == b"old"
    else:
        assert os.listdir(tmp_path) == []


def test_interrupt_mid_write_also_cleans_up(tmp_path, monkeypatch):
    def interrupted(fd, data):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        LocalStore(str(tmp_path)).put("r.html", b"x")
    assert os.listdir(tmp_path) == []


def test_failure_at_rename_leaves_no_temporary(tmp_path, monkeypatch):
    def failing_replace(src, dst):
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        LocalStore(str(tmp_path)).put("r.html", b"x")
    assert os.listdir(tmp_path) == []


def test_put_into_a_missing_directory_raises_enoent(tmp_path):
    with pytest.raises(FileNotFoundError):
        LocalStore(str(tmp_path / "gone")).put("r.html", b"x")


UNSAFE = [
    "",
    ".",
    "..",
    "a/b",
    "/abs",
    "../up",
    ".hidden",
    ".tmp-123-x",
    "a\x00b",
    "a\\b",
    "x" * 256,
    "x" * 300,
]


@pytest.mark.parametrize("name", UNSAFE, ids=lambda n: repr(n)[:20])
def test_check_name_rejects(name, tmp_path):
    with pytest.raises(ValueError, match="unsafe file name"):
        check_name(name)
    store = LocalStore(str(tmp_path))
    with pytest.raises(ValueError):
        store.put(name, b"x")
    with pytest.raises(ValueError):
        store.get(name)
    with pytest.raises(ValueError):
        store.remove(name)
    assert os.listdir(tmp_path) == []


def test_check_name_counts_bytes_not_characters():
    with pytest.raises(ValueError):
        check_name("é" * 128)  # 128 characters, 256 bytes
    assert check_name("é" * 127) == "é" * 127


@pytest.mark.parametrize(
    "name", ["report.html", "20261126T143618.123456Z_GET_root_3ms_1-abc-1.meta.json", "x" * 255]
)
def test_check_name_accepts(name, tmp_path):
    assert check_name(name) == name
    LocalStore(str(tmp_path)).put(name, b"ok")
    assert (tmp_path / name).read_bytes() == b"ok"


def test_put_accepts_every_name_check_name_accepts(tmp_path):
    name = "é" * 120  # 240 bytes: valid
    assert check_name(name) == name
    LocalStore(str(tmp_path)).put(name, b"ok")
    assert (tmp_path / name).read_bytes() == b"ok"


def test_names_skips_dot_files_and_filters_by_suffix(tmp_path):
    store = LocalStore(str(tmp_path))
    store.put("a.meta.json", b"{}")
    store.put("a.html", b"")
    store.put("b.meta.json", b"{}")
    (tmp_path / ".hidden.meta.json").write_text("{}")
    (tmp_path / f"{TEMP_PREFIX}0123-c.meta.json").write_text("{}")
    (tmp_path / ".spool").mkdir()
    assert sorted(store.names()) == ["a.html", "a.meta.json", "b.meta.json"]
    assert sorted(store.names(".meta.json")) == ["a.meta.json", "b.meta.json"]
    assert list(store.names(".pstats")) == []


def test_names_of_a_missing_directory_is_empty(tmp_path):
    assert list(LocalStore(str(tmp_path / "nope")).names()) == []


def test_remove_is_quiet_when_missing(tmp_path):
    store = LocalStore(str(tmp_path))
    store.put("x", b"1")
    store.remove("x")
    store.remove("x")
    assert os.listdir(tmp_path) == []
