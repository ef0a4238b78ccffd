"""A setting with a bad value stops gunicorn at start-up with one line naming the variable."""

from __future__ import annotations

import pytest
from support import CONFIG_FILE, CONFIG_MODULE, ENV_PREFIX, FLASK_APP

SHORT_TOKEN = "sEcR3t-sh0rt"  # 12 characters: too short, and must never be echoed

# (variable suffix, value); "" is the switch itself.
BAD_VALUES = [
    ("", "maybe"),
    ("SAMPLE_RATE", "1.5"),
    ("SAMPLE_RATE", "nan"),
    ("INTERVAL", "0"),
    ("FORMATS", "html,pdf"),
    ("FORMATS", ""),
    ("INCLUDE", "["),
    ("EXCLUDE", "("),
    ("TOKEN", SHORT_TOKEN),
    ("TOKEN", "has a space but is long enough"),
    ("MIN_DURATION", "-1"),
    ("FILE_MODE", "0777"),
    ("FILE_MODE", "0400"),
    ("QUEUE_SIZE", "0"),
    ("LABEL", "release\x07one"),
    ("BASE_CONFIG", "/nonexistent/gunicorn_conf.py"),
    ("BASE_CONFIG", "python:not a module"),
    ("DIR", "{regular_file}/reports"),
]


@pytest.mark.parametrize(
    ("suffix", "value"), BAD_VALUES, ids=[f"{s or 'SWITCH'}={v!r}" for s, v in BAD_VALUES]
)
def test_bad_value_stops_gunicorn_with_one_line(gunicorn, tmp_path, suffix, value):
    regular_file = tmp_path / "a-file"
    regular_file.write_text("not a directory")
    variable = f"{ENV_PREFIX}_{suffix}" if suffix else ENV_PREFIX
    env = {ENV_PREFIX: "1", f"{ENV_PREFIX}_DIR": str(tmp_path / "reports")}
    env[variable] = value.format(regular_file=regular_file)

    result = gunicorn.run("-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=env, timeout=20)

    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"gunicorn-pyinstrument: error: {variable}="), lines[0]
    assert "is not valid" in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    if suffix == "TOKEN":
        assert value not in result.stderr + result.stdout
    assert not (tmp_path / "reports").exists() or suffix == "DIR"


def test_bad_value_with_the_python_module_form(gunicorn, tmp_path):
    env = {ENV_PREFIX: "1", f"{ENV_PREFIX}_DIR": str(tmp_path / "r"), f"{ENV_PREFIX}_SAMPLE_RATE": "-0.1"}
    result = gunicorn.run("-c", CONFIG_MODULE, FLASK_APP, env=env, timeout=20)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"gunicorn-pyinstrument: error: {ENV_PREFIX}_SAMPLE_RATE='-0.1' is not valid")


def test_bad_value_stops_gunicorn_even_when_switched_off(gunicorn, tmp_path):
    """A typo shows up before the day profiling is switched on."""
    env = {f"{ENV_PREFIX}_DIR": str(tmp_path / "r"), f"{ENV_PREFIX}_FORMATS": "htlm"}
    result = gunicorn.run("-c", CONFIG_MODULE, FLASK_APP, env=env, timeout=20)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"gunicorn-pyinstrument: error: {ENV_PREFIX}_FORMATS='htlm' is not valid")
    assert not (tmp_path / "r").exists()
