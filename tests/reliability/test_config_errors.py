"""Every setting, every kind of wrong value: real gunicorn refuses to start, at once, with one line.

One case per variable and per kind of wrong value that applies to it (empty where not allowed,
wrong type, out of range, bad regular expression, unknown word, bad syntax). Each case starts real
gunicorn with ``GUNICORN_PYINSTRUMENT=1`` and that one bad variable, and checks that it exits with
status 2 during start-up, quickly, with exactly one line on stderr, from the plugin, naming the
variable, the value (``<hidden, N characters>`` for the token, which never appears) and what is
accepted; that no worker was started; and that nothing was created.

The table must cover every declaration in ``settings.declarations()``: a new setting without a case
fails :func:`test_every_setting_has_a_case`. The cases run four at a time, once per module; each
test then checks one case's outcome.

The parsers themselves are checked value by value in ``tests/unit/test_settings.py``; a few of the
cases start gunicorn in ``tests/integration/test_startup_errors.py``. This module is the complete
table on real processes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import CONFIG_FILE, FLASK_APP, GunicornFactory

from gunicorn_pyinstrument import settings as S

APP = "tests.apps.echo_app:app"
DECLS = dict(S.declarations())
PARALLEL = 4
#: A start-up failure takes about 0.15 s; the bound allows for a busy machine.
QUICK_SECONDS = 5.0
TOKEN_LIKE = "Tok3n-" + "x" * 4  # too short; must never be echoed

#: Settings no value in an environment variable can make wrong, and why (each claim is tested).
NO_BAD_VALUE = {
    # Any path is accepted: the file is looked up while running, and its absence means "off". The
    # one refused value, a path with a NUL byte, cannot be put in an environment variable.
    "control_file": ["", "relative/on", "~/pyinstrument.on", "/no/such/dir/file", "é ✓ \udcff"],
    # The command line's cache directory, the same kind of path; the server never uses it.
    "cache_dir": ["", "relative/cache", "~/.cache/x", "/no/such/dir", "é ✓ \udcff"],
}


@dataclass(frozen=True)
class Case:
    attr: str
    kind: str
    value: str  # "{file}" is replaced by the path of a regular file

    @property
    def env(self) -> str:
        return DECLS[self.attr].env

    @property
    def id(self) -> str:
        return f"{self.attr}-{self.kind}"


CASES = [
    Case("enabled", "empty", ""),
    Case("enabled", "word", "maybe"),
    Case("enabled", "type", "2"),
    Case("dir", "empty", ""),
    Case("dir", "blank", "   "),
    Case("dir", "not-a-directory", "{file}"),
    Case("dir", "not-creatable", "{file}/reports"),
    Case("dir", "url", "s3://fleet-reports/prod"),
    Case("formats", "empty", ""),
    Case("formats", "word", "html,pdf"),
    Case("formats", "syntax", "session,,html"),
    Case("interval", "empty", ""),
    Case("interval", "type", "fast"),
    Case("interval", "range-low", "0"),
    Case("interval", "range-high", "1.5"),
    Case("interval", "not-finite", "nan"),
    Case("sample_rate", "empty", ""),
    Case("sample_rate", "type", "half"),
    Case("sample_rate", "range-low", "-0.1"),
    Case("sample_rate", "range-high", "1.01"),
    Case("sample_rate", "syntax", "50%"),
    Case("min_duration", "empty", ""),
    Case("min_duration", "type", "soon"),
    Case("min_duration", "range", "-1"),
    Case("min_duration", "not-finite", "inf"),
    Case("include", "regex", "[a-"),
    Case("include", "regex-overflow", "a{4294967296}"),
    Case("include", "regex-nesting", "(" * 2000 + ")" * 2000),
    Case("exclude", "regex", "(?P<"),
    # A global flag not at the start: refused from Python 3.11, only warned about before.
    *([Case("exclude", "regex-flags", "x(?i)")] if sys.version_info >= (3, 11) else []),
    Case("token", "range-short", TOKEN_LIKE),
    Case("token", "range-long", "T" * 257),
    Case("token", "syntax-space", "a token with spaces"),
    Case("token", "syntax-non-ascii", "jeton-très-secret-é"),
    Case("label", "range", "x" * 201),
    Case("label", "syntax-control", "release\x07one"),
    Case("label", "syntax-invalid-utf8", "release-\udcff"),
    Case("file_mode", "empty", ""),
    Case("file_mode", "type", "rw-r-----"),
    Case("file_mode", "range-exec", "0700"),
    Case("file_mode", "range-owner", "0400"),
    Case("file_mode", "syntax", "0o1600"),
    Case("queue_size", "empty", ""),
    Case("queue_size", "type", "1.5"),
    Case("queue_size", "range-low", "0"),
    Case("queue_size", "range-high", "100001"),
    Case("mode", "empty", ""),
    Case("mode", "word", "thread"),
    Case("engine", "empty", ""),
    Case("engine", "word", "cprofile"),
    Case("max_overhead", "empty", ""),
    Case("max_overhead", "type", "cheap"),
    Case("max_overhead", "range-low", "0%"),
    Case("max_overhead", "range-high", "101%"),
    Case("flush_interval", "empty", ""),
    Case("flush_interval", "type", "often"),
    Case("flush_interval", "range-low", "0.5"),
    Case("flush_interval", "range-high", "86401"),
    Case("schedule", "syntax", "30s"),
    Case("schedule", "unit", "30x/10m"),
    Case("schedule", "range", "10m/30s"),
    Case("schedule", "range-zero", "0s/1m"),
    Case("schedule", "range-huge", "1s/" + "9" * 400 + "h"),
    Case("record_query", "empty", ""),
    Case("record_query", "word", "sometimes"),
    Case("record_headers", "syntax", "User Agent"),
    Case("record_headers", "syntax-empty-item", "User-Agent,,X-Request-Id"),
    Case("record_headers", "token-header", "X-Request-Id,x-pyinstrument-token"),
    Case("max_reports", "type", "many"),
    Case("max_reports", "range", "0"),
    Case("max_bytes", "unit", "5 parsecs"),
    Case("max_bytes", "range", "0"),
    Case("max_bytes", "range-huge", "1" + "0" * 400 + "TB"),
    Case("upload", "syntax", "https://bucket/reports"),
    Case("upload", "bucket", "s3://Not_A_Bucket/reports"),
    Case("upload", "prefix", "s3://bucket/a/../b"),
    Case("s3_endpoint_url", "syntax", "localhost:9000"),
    Case("s3_endpoint_url", "scheme", "ftp://store.example"),
    Case("s3_endpoint_url", "range", "http://store.example:99999"),
    Case("spool_max_bytes", "empty", ""),
    Case("spool_max_bytes", "unit", "5 parsecs"),
    Case("spool_max_bytes", "range", "0"),
    Case("base_config", "missing-file", "/no/such/dir/gunicorn.conf.py"),
    Case("base_config", "syntax", "python:not a module"),
]


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    report_dir: Path
    value: str  # the value given, with the path of the regular file put in


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Every case, run once, PARALLEL at a time."""
    root = tmp_path_factory.mktemp("config-errors")
    regular_file = root / "a-file"
    regular_file.write_text("not a directory")
    logs = root / "logs"
    logs.mkdir()
    factory = GunicornFactory(logs)

    def run(index: int, case: Case) -> Outcome:
        report_dir = root / f"reports-{index}"
        env = {S.PREFIX: "1", DECLS["dir"].env: str(report_dir)}
        value = case.value.replace("{file}", str(regular_file))
        env[case.env] = value
        started = time.monotonic()
        result: subprocess.CompletedProcess[str] = factory.run(
            "-c", CONFIG_FILE, "-w", "2", APP, env=env, timeout=20
        )
        return Outcome(
            result.returncode, result.stdout, result.stderr, time.monotonic() - started, report_dir, value
        )

    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = {case.id: pool.submit(run, i, case) for i, case in enumerate(CASES)}
        return {case_id: future.result() for case_id, future in futures.items()}


def test_every_setting_has_a_case() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    covered = {c.attr for c in CASES}
    assert covered.isdisjoint(NO_BAD_VALUE)
    missing = set(DECLS) - covered - set(NO_BAD_VALUE)
    assert not missing, f"settings without a wrong-value case: {sorted(DECLS[a].env for a in missing)}"


@pytest.mark.parametrize(("attr", "values"), NO_BAD_VALUE.items())
def test_settings_without_a_bad_value_accept_anything_an_environment_can_hold(attr, values) -> None:
    for value in values:
        S.load({DECLS[attr].env: value})


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_value_stops_gunicorn_with_one_line(outcomes: dict[str, Outcome], case: Case) -> None:
    outcome = outcomes[case.id]
    decl = DECLS[case.attr]

    assert outcome.returncode == 2, (outcome.returncode, outcome.stderr[-2000:])
    assert outcome.seconds < QUICK_SECONDS, outcome.seconds
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, outcome.stderr[-2000:]
    [line] = lines
    assert line.startswith(f"gunicorn-pyinstrument: error: {case.env}="), line
    assert " is not valid (" in line and line.endswith(f": expected {decl.accepted}"), line
    assert line.isprintable(), line
    if decl.secret:
        assert f"{case.env}=<hidden, {len(case.value)} characters> is not valid" in line, line
    else:
        assert f"{case.env}={outcome.value!r} is not valid" in line, line

    if case.attr == "token":
        assert case.value not in outcome.stderr + outcome.stdout
    # Nothing ran: no worker, no listening, nothing created.
    assert outcome.stdout == ""
    assert "Booting worker" not in outcome.stderr and "Listening at" not in outcome.stderr
    if case.attr != "dir":
        assert not outcome.report_dir.exists()


def test_start_up_failures_are_quick(outcomes: dict[str, Outcome]) -> None:
    """Typical time to refuse a bad value, however many cases run at once (PARALLEL on the cores)."""
    times = sorted(o.seconds for o in outcomes.values())
    median = times[len(times) // 2]
    assert median < 1.5, times


def test_a_url_as_the_directory_points_to_upload_and_creates_nothing(gunicorn, tmp_path: Path) -> None:
    """``DIR=s3://...`` is what a user tries first for a bucket: refused, never a directory ``s3:``."""
    env = {S.PREFIX: "1", DECLS["dir"].env: "s3://fleet-reports/prod"}
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = gunicorn.run("-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=env, cwd=cwd, timeout=20)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert f"set {DECLS['upload'].env}=s3://BUCKET/PREFIX to upload reports" in line, line
    assert list(cwd.iterdir()) == []


def test_a_misspelt_variable_stops_gunicorn_naming_the_nearest_setting(gunicorn, tmp_path: Path) -> None:
    """Without the check, SAMPLERATE (no underscore) would profile every request, silently."""
    reports = tmp_path / "reports"
    env = {S.PREFIX: "1", DECLS["dir"].env: str(reports), f"{S.PREFIX}_SAMPLERATE": "0.01"}
    started = time.monotonic()
    result = gunicorn.run("-c", CONFIG_FILE, "-w", "2", APP, env=env, timeout=20)
    assert result.returncode == 2, result.stderr
    assert time.monotonic() - started < QUICK_SECONDS
    assert result.stderr.splitlines() == [
        f"gunicorn-pyinstrument: error: {S.PREFIX}_SAMPLERATE is not a setting: "
        f"did you mean {DECLS['sample_rate'].env}?"
    ]
    assert "0.01" not in result.stderr  # a misspelt token must not be echoed either
    assert result.stdout == "" and not reports.exists()
