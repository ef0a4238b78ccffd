"""The hook functions: each one takes exactly the arguments gunicorn passes it, so gunicorn accepts
it as that hook; the start-up checks of the output directory and of an upload."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.util import get_arity

from gunicorn_pyinstrument import hooks
from gunicorn_pyinstrument import settings as S
from gunicorn_pyinstrument.chaining import HOOK_ARITY
from gunicorn_pyinstrument.hooks import OUR_HOOKS, prepare_directory
from gunicorn_pyinstrument.settings import SettingError, load


def gunicorn_set(name: str, value: Any) -> Config:
    cfg = Config()
    cfg.set(name, value)  # gunicorn's own validation: raises TypeError on a wrong arity
    return cfg


@pytest.mark.parametrize("name", list(OUR_HOOKS))
def test_gunicorn_accepts_our_hooks(name):
    hook = OUR_HOOKS[name]
    assert get_arity(hook) == HOOK_ARITY[name]
    cfg = gunicorn_set(name, hook)
    assert getattr(cfg, name) is hook


DECLS = dict(S.declarations())
ENV = {attr: decl.env for attr, decl in DECLS.items()}
SWITCH = ENV["enabled"]


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def assert_one_line(message: str) -> None:
    assert message, "empty error message"
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    assert message.isprintable(), f"control character in: {message!r}"


# --- prepare_directory ---


def _enabled(directory: Path, file_mode: str = "0600") -> S.Settings:
    return load({SWITCH: "1", ENV["dir"]: str(directory), ENV["file_mode"]: file_mode})


@pytest.mark.parametrize(
    ("file_mode", "dir_mode"), [("0600", 0o700), ("0640", 0o750), ("0660", 0o750), ("0644", 0o755)]
)
@pytest.mark.parametrize("mask", [0o022, 0o000])
def test_prepare_directory_creates_missing_dir_with_mode(tmp_path, umask, file_mode, dir_mode, mask):
    umask(mask)
    target = tmp_path / "a" / "b" / "reports"
    prepare_directory(_enabled(target, file_mode))
    assert target.is_dir()
    assert stat.S_IMODE(target.stat().st_mode) == dir_mode


def test_prepare_directory_mode_ignores_a_strict_umask(tmp_path, umask):
    umask(0o077)
    target = tmp_path / "reports"
    prepare_directory(_enabled(target, "0640"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o750


def test_prepare_directory_accepts_existing_dir(tmp_path):
    prepare_directory(_enabled(tmp_path))
    assert tmp_path.is_dir()


@pytest.mark.parametrize("where", ["under_file", "is_file"])
def test_prepare_directory_refuses_a_path_through_a_regular_file(tmp_path, where):
    regular = tmp_path / "plain.txt"
    regular.write_text("x")
    target = regular / "reports" if where == "under_file" else regular
    with pytest.raises(SettingError) as info:
        prepare_directory(_enabled(target))
    message = str(info.value)
    assert_one_line(message)
    assert message.startswith(f"{ENV['dir']}={str(target)!r}")
    assert DECLS["dir"].accepted in message


def test_missing_boto3_is_one_line_naming_the_variable_and_the_extra(monkeypatch):
    monkeypatch.setattr(hooks, "boto3_available", lambda: False)
    settings = S.load({"GUNICORN_PYINSTRUMENT_UPLOAD": "s3://fleet-reports/p"})
    with pytest.raises(S.SettingError) as info:
        hooks.prepare_upload(settings)
    message = str(info.value)
    assert message.startswith("GUNICORN_PYINSTRUMENT_UPLOAD='s3://fleet-reports/p' needs boto3")
    assert "pip install 'gunicorn-pyinstrument[s3]'" in message and "\n" not in message
    hooks.prepare_upload(S.load({}))  # nothing to check without an upload


def test_startup_stops_on_an_unknown_variable_with_one_line(capsys, tmp_path):
    env = {SWITCH: "1", ENV["dir"]: str(tmp_path / "reports"), "GUNICORN_PYINSTRUMENT_SAMPLERATE": "0.01"}
    with pytest.raises(SystemExit) as info:
        hooks.startup(env)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        "gunicorn-pyinstrument: error: GUNICORN_PYINSTRUMENT_SAMPLERATE is not a setting: "
        "did you mean GUNICORN_PYINSTRUMENT_SAMPLE_RATE?\n"
    )
    assert not (tmp_path / "reports").exists()


def test_startup_refuses_a_url_as_the_directory_and_creates_nothing(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        hooks.startup({SWITCH: "1", ENV["dir"]: "s3://fleet-reports/prod"})
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "gunicorn-pyinstrument: error: GUNICORN_PYINSTRUMENT_DIR='s3://fleet-reports/prod'"
    )
    assert ENV["upload"] in line
    assert list(tmp_path.iterdir()) == []
