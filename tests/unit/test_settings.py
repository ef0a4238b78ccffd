"""Settings: parsing, one-line errors, the output directory and the generated docs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gunicorn_pyinstrument import settings as S
from gunicorn_pyinstrument.inputs import S3Location
from gunicorn_pyinstrument.settings import Schedule, SettingError, load, parse_schedule

REPO = Path(__file__).resolve().parents[2]
DECLS = dict(S.declarations())
ENV = {attr: decl.env for attr, decl in DECLS.items()}
SWITCH = ENV["enabled"]


def error_for(env: str, value: str) -> str:
    with pytest.raises(SettingError) as info:
        load({env: value})
    return str(info.value)


def assert_one_line(message: str) -> None:
    assert message, "empty error message"
    # repr() of the value is always printable, so a control character here can only be a raw one
    # that breaks the line (or the terminal).
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    assert message.isprintable(), f"control character in: {message!r}"


# --- defaults ---


def test_defaults():
    s = load({})
    assert s.enabled is False
    assert s.formats == ("session", "html")
    assert s.rendered_formats == ("html",)
    assert s.interval == 0.001
    assert s.sample_rate == 1.0
    assert s.min_duration == 0.0
    assert s.include is None and s.exclude is None
    assert s.token is None and s.label is None and s.base_config is None
    assert s.file_mode == 0o600
    assert s.queue_size == 256
    assert s.dir == os.path.abspath("pyinstrument-reports")


def test_sampler_engine_defaults_to_100_hz_unless_the_interval_is_set():
    assert load({"GUNICORN_PYINSTRUMENT_ENGINE": "sampler"}).interval == 0.01
    explicit = {"GUNICORN_PYINSTRUMENT_ENGINE": "sampler", "GUNICORN_PYINSTRUMENT_INTERVAL": "0.001"}
    assert load(explicit).interval == 0.001
    assert load({"GUNICORN_PYINSTRUMENT_ENGINE": "pyinstrument"}).interval == 0.001


def test_max_overhead_is_a_percentage_or_off():
    assert load({}).max_overhead == 0.01
    assert load({ENV["max_overhead"]: "0.5%"}).max_overhead == pytest.approx(0.005)
    assert load({ENV["max_overhead"]: " 5 "}).max_overhead == pytest.approx(0.05)
    assert load({ENV["max_overhead"]: "100%"}).max_overhead == 1.0
    assert load({ENV["max_overhead"]: "OFF"}).max_overhead is None


def test_load_reads_os_environ_when_no_mapping_given(monkeypatch, tmp_path):
    monkeypatch.setenv(SWITCH, "on")
    monkeypatch.setenv(ENV["dir"], str(tmp_path))
    s = load()
    assert s.enabled is True and s.dir == str(tmp_path)


# --- bad values: one line, names the variable, shows the value, says what is accepted ---

BAD_VALUES: list[tuple[str, str]] = [
    ("record_query", "sometimes"),
    ("record_query", ""),
    ("record_headers", "User Agent"),
    ("record_headers", "X-Pyinstrument-Token"),
    ("record_headers", "a,,b"),
    ("max_reports", "0"),
    ("max_reports", "many"),
    ("max_reports", "1.5"),
    ("max_bytes", "0"),
    ("max_bytes", "5 parsecs"),
    ("max_bytes", "-1MB"),
    ("engine", ""),
    ("engine", "cprofile"),
    ("mode", ""),
    ("mode", "thread"),
    ("flush_interval", "0"),
    ("flush_interval", "soon"),
    ("schedule", "30s"),
    ("schedule", "10m/30s"),
    ("schedule", "0s/1m"),
    ("schedule", "30x/10m"),
    ("control_file", "/tmp/a\x00b"),
    ("enabled", ""),
    ("enabled", "maybe"),
    ("enabled", "2"),
    ("enabled", "enabled"),
    ("dir", ""),
    ("dir", "   "),
    ("dir", "a\x00b"),
    ("formats", ""),
    ("formats", " , "),
    ("formats", "pdf"),
    ("formats", "html,flamegraph"),
    ("formats", "html,"),
    ("interval", ""),
    ("interval", "fast"),
    ("interval", "0"),
    ("interval", "-0.001"),
    ("interval", "1.5"),
    ("interval", "nan"),
    ("interval", "inf"),
    ("max_overhead", ""),
    ("max_overhead", "0%"),
    ("max_overhead", "101%"),
    ("max_overhead", "-1"),
    ("max_overhead", "cheap"),
    ("max_overhead", "1%%"),
    ("sample_rate", ""),
    ("sample_rate", "half"),
    ("sample_rate", "-0.01"),
    ("sample_rate", "1.01"),
    ("sample_rate", "NaN"),
    ("sample_rate", "50%"),
    ("min_duration", ""),
    ("min_duration", "soon"),
    ("min_duration", "-1"),
    ("min_duration", "inf"),
    ("include", "("),
    ("include", "[a-"),
    ("include", "*"),
    ("exclude", "(?P<"),
    ("exclude", ")"),
    ("label", "x" * 201),
    ("label", "line\nbreak"),
    ("label", "tab\there"),
    ("file_mode", ""),
    ("file_mode", "abc"),
    ("file_mode", "0777"),
    ("file_mode", "0700"),
    ("file_mode", "0400"),
    ("file_mode", "0o1600"),
    ("file_mode", "0680"),
    ("file_mode", "60"),
    ("queue_size", ""),
    ("queue_size", "0"),
    ("queue_size", "-5"),
    ("queue_size", "100001"),
    ("queue_size", "1.5"),
    ("queue_size", "lots"),
    ("base_config", "python:"),
    ("base_config", "python:1abc"),
    ("base_config", "python:a..b"),
    ("base_config", "/definitely/not/here/gunicorn.conf.py"),
    ("base_config", "file:/definitely/not/here.py"),
    ("upload", "/var/reports"),
    ("upload", "https://fleet-reports.s3.amazonaws.com/prod"),
    ("upload", "s3://"),
    ("upload", "s3://Fleet_Reports/prod"),
    ("upload", "s3://fleet-reports/prod//web"),
    ("upload", "s3://fleet-reports/../prod"),
    ("s3_endpoint_url", "127.0.0.1:9000"),
    ("s3_endpoint_url", "ftp://127.0.0.1"),
    ("s3_endpoint_url", "http://"),
    ("s3_endpoint_url", "http://127.0.0.1:99999"),
    ("spool_max_bytes", ""),
    ("spool_max_bytes", "0"),
    ("spool_max_bytes", "lots"),
    ("spool_max_bytes", "-1GB"),
    ("cache_dir", "/tmp/\x00cache"),
]


def test_every_variable_has_bad_value_cases():
    assert {attr for attr, _ in BAD_VALUES} | {"token"} == set(DECLS)


@pytest.mark.parametrize(("attr", "value"), BAD_VALUES, ids=[f"{a}={v!r}"[:40] for a, v in BAD_VALUES])
def test_bad_value_is_one_line_naming_variable_value_and_accepted(attr, value):
    decl = DECLS[attr]
    message = error_for(decl.env, value)
    assert_one_line(message)
    assert message.startswith(f"{decl.env}="), message
    assert repr(value) in message, message
    assert decl.accepted in message, message


BAD_TOKENS = [
    "s3cr3t-val",  # too short
    "Q" * 15,  # one short of the minimum
    "Z9" * 129,  # too long (258)
    "abcdefgh ijklmnop",  # space
    "\u00e9tait-un-secret-tres-long",  # non-ASCII
    "tab\tinside-a-long-token",
    "line\nbreak-in-a-long-token",
]


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_bad_token_is_never_echoed(token):
    decl = DECLS["token"]
    message = error_for(decl.env, token)
    assert_one_line(message)
    assert message.startswith(f"{decl.env}="), message
    assert f"<hidden, {len(token)} characters>" in message, message
    assert token not in message and repr(token) not in message
    assert decl.accepted in message


@pytest.mark.parametrize(
    "attr",
    [
        "include",
        "exclude",
        "token",
        "label",
        "base_config",
        "schedule",
        "control_file",
        "upload",
        "s3_endpoint_url",
        "cache_dir",
    ],
)
def test_empty_means_unset_for_optional_text(attr):
    assert getattr(load({DECLS[attr].env: ""}), attr) is None


def test_declared_defaults_say_unset_exactly_for_optional_text():
    assert {a for a, d in DECLS.items() if d.default is None} == {
        "include",
        "exclude",
        "token",
        "label",
        "base_config",
        "schedule",
        "control_file",
        "max_reports",
        "max_bytes",
        "record_headers",
        "upload",
        "s3_endpoint_url",
        "cache_dir",
    }


# --- accepted values ---


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        *[(w, True) for w in ["1", "true", "yes", "on", "TRUE", "Yes", "oN", " on "]],
        *[(w, False) for w in ["0", "false", "no", "off", "FALSE", "No", "OFF", "\toff\n"]],
    ],
)
def test_switch_spellings(word, expected):
    assert load({SWITCH: word}).enabled is expected


def test_formats_dedup_keep_order_and_case_insensitive():
    s = load({ENV["formats"]: "html, session,HTML,text ,session"})
    assert s.formats == ("html", "session", "text")
    assert s.rendered_formats == ("html", "text")


def test_every_format_is_accepted():
    s = load({ENV["formats"]: ",".join(S.FORMAT_SUFFIXES)})
    assert s.formats == tuple(S.FORMAT_SUFFIXES)


@pytest.mark.parametrize(
    ("raw", "mode"),
    [("0600", 0o600), ("0640", 0o640), ("0o644", 0o644), ("600", 0o600), ("0666", 0o666), ("0O660", 0o660)],
)
def test_file_mode_accepted(raw, mode):
    assert load({ENV["file_mode"]: raw}).file_mode == mode


@pytest.mark.parametrize(
    ("attr", "raw", "value"),
    [
        ("interval", "1", 1.0),
        ("interval", "0.0001", 0.0001),
        ("sample_rate", "0", 0.0),
        ("sample_rate", "0.25", 0.25),
        ("min_duration", "2.5", 2.5),
        ("queue_size", "1", 1),
        ("queue_size", "100000", 100_000),
        ("label", "release 1.2 (abc123)", "release 1.2 (abc123)"),
        ("token", "A" * 16, "A" * 16),
        ("token", "~" * 256, "~" * 256),
        ("base_config", "python:my_pkg.gunicorn_conf", "python:my_pkg.gunicorn_conf"),
    ],
)
def test_accepted_values(attr, raw, value):
    assert getattr(load({DECLS[attr].env: raw}), attr) == value


def test_regexes_are_compiled():
    s = load({ENV["include"]: r"^/api/", ENV["exclude"]: r"/health$"})
    assert s.include is not None and s.include.search("/api/x")
    assert s.exclude is not None and s.exclude.search("/api/health")


def test_base_config_file_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "conf.py").write_text("workers = 1\n")
    monkeypatch.chdir(tmp_path)
    assert load({ENV["base_config"]: "conf.py"}).base_config == str(tmp_path / "conf.py")
    assert load({ENV["base_config"]: "file:conf.py"}).base_config == str(tmp_path / "conf.py")


def test_dir_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load({ENV["dir"]: "reports/x"}).dir == str(tmp_path / "reports" / "x")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load({ENV["dir"]: "~/prof"}).dir == str(tmp_path / "home" / "prof")


@pytest.mark.parametrize(
    "url", ["s3://fleet-reports/prod", "S3://bucket", "  s3://bucket/p", "file:///tmp/reports", "https://x/y"]
)
def test_a_url_is_not_a_directory_and_points_to_upload(url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = error_for(ENV["dir"], url)
    assert_one_line(message)
    assert message.startswith(f"{ENV['dir']}={url!r} is not valid (a URL, not a directory: "), message
    assert f"set {ENV['upload']}=s3://BUCKET/PREFIX to upload reports" in message
    assert list(tmp_path.iterdir()) == []


def test_a_path_with_a_colon_is_still_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load({ENV["dir"]: "reports/s3:x"}).dir == str(tmp_path / "reports" / "s3:x")
    assert load({ENV["dir"]: "./s3://x"}).dir == str(tmp_path / "s3:" / "x")  # spelt as a path on purpose


def test_the_spool_beside_an_upload_is_still_a_directory(tmp_path):
    settings = load({ENV["upload"]: "s3://fleet-reports/prod", ENV["dir"]: str(tmp_path / "spool")})
    assert settings.dir == str(tmp_path / "spool") and str(settings.upload) == "s3://fleet-reports/prod"


# --- unknown variables with our prefix ---


@pytest.mark.parametrize(
    ("name", "nearest"),
    [
        ("GUNICORN_PYINSTRUMENT_SAMPLERATE", "GUNICORN_PYINSTRUMENT_SAMPLE_RATE"),
        ("GUNICORN_PYINSTRUMENT_sample_rate", "GUNICORN_PYINSTRUMENT_SAMPLE_RATE"),
        ("GUNICORN_PYINSTRUMENT_FORMAT", "GUNICORN_PYINSTRUMENT_FORMATS"),
        ("GUNICORN_PYINSTRUMENT_MIN_DURATON", "GUNICORN_PYINSTRUMENT_MIN_DURATION"),
        ("GUNICORN_PYINSTRUMENT_UPLOAD_URL", "GUNICORN_PYINSTRUMENT_UPLOAD"),
        ("GUNICORN_PYINSTRUMENT_ENDPOINT_URL", "GUNICORN_PYINSTRUMENT_S3_ENDPOINT_URL"),
        ("GUNICORN_PYINSTRUMENT_MAXREPORTS", "GUNICORN_PYINSTRUMENT_MAX_REPORTS"),
        ("GUNICORN_PYINSTRUMENT_ENABLED", "GUNICORN_PYINSTRUMENT"),
        ("GUNICORN_PYINSTRUMENT_ON", "GUNICORN_PYINSTRUMENT"),
        ("GUNICORN_PYINSTRUMENT_", "GUNICORN_PYINSTRUMENT"),
    ],
)
def test_an_unknown_variable_is_one_line_naming_it_and_the_nearest_setting(name, nearest):
    message = error_for(name, "0.01")
    assert message == f"{name} is not a setting: did you mean {nearest}?"


def test_an_unknown_variable_never_shows_its_value():
    secret = "a-misspelt-token-0123456789"
    message = error_for("GUNICORN_PYINSTRUMENT_TOKN", secret)
    assert secret not in message and message.endswith(f"did you mean {ENV['token']}?")


def test_several_unknown_variables_name_the_first_and_count_the_others():
    with pytest.raises(SettingError) as info:
        load(
            {
                "GUNICORN_PYINSTRUMENT_ZZZ": "1",
                "GUNICORN_PYINSTRUMENT_LABLE": "v1",
                "GUNICORN_PYINSTRUMENT_B": "",
            }
        )
    assert str(info.value).startswith(
        "GUNICORN_PYINSTRUMENT_B is not a setting (2 more unknown): did you mean "
    )


def test_an_unknown_name_comes_before_any_bad_value():
    with pytest.raises(SettingError, match=r"^GUNICORN_PYINSTRUMENT_SAMPLERATE is not a setting"):
        load({ENV["sample_rate"]: "2", "GUNICORN_PYINSTRUMENT_SAMPLERATE": "1"})


@pytest.mark.parametrize(
    "name",
    [
        "GUNICORN_PYINSTRUMENTX",
        "GUNICORN_CMD_ARGS",
        "MY_GUNICORN_PYINSTRUMENT_DIR",
        "gunicorn_pyinstrument_x",
    ],
)
def test_other_variables_are_not_ours(name):
    assert load({name: "anything"}) == load({})


def test_every_declared_variable_is_known():
    every = {decl.env: decl.default or "" for decl in DECLS.values()}
    every[ENV["base_config"]] = ""  # the default is unset; a path would have to exist
    assert S.unknown_variables(every) == []
    load(every)


def test_unknown_names_in_the_process_environment(monkeypatch):
    monkeypatch.setenv("GUNICORN_PYINSTRUMENT_SAMPLERATE", "0.01")
    with pytest.raises(SettingError, match="did you mean GUNICORN_PYINSTRUMENT_SAMPLE_RATE"):
        load()


def test_the_command_line_reads_one_setting_whatever_else_is_set():
    """The CLI reads a setting or two (load_one) from the server's environment; the server's own
    start-up is where a misspelt name is refused."""
    assert S.load_one("label", {"GUNICORN_PYINSTRUMENT_SAMPLERATE": "1", ENV["label"]: "v1"}) == "v1"


# --- docs generated from the declarations ---


def test_docs_are_generated_from_declarations():
    on_disk = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert on_disk == S.render_docs(), "docs/configuration.md is out of date: run `make docs`"


def test_every_declaration_is_prefixed_unique_and_documented():
    docs = S.render_docs()
    envs = [d.env for d in DECLS.values()]
    assert len(set(envs)) == len(envs)
    for env in envs:
        assert env == S.PREFIX or env.startswith(S.PREFIX + "_"), env
        assert f"| `{env}` |" in docs, f"{env} missing from the table"
        assert f"## `{env}`" in docs, f"{env} has no section"


def test_only_the_token_is_secret():
    assert [a for a, d in DECLS.items() if d.secret] == ["token"]


# --- property: any text either parses or gives a one-line SettingError ---

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=300)


@pytest.mark.parametrize("attr", list(DECLS))
@given(value=ANY_TEXT)
@example(value="(?\n)")
@example(value="(?<\r)")
@example(value="~\x00")
@example(value="\udcff")
def test_any_text_parses_or_gives_one_line_setting_error(attr, value):
    env = DECLS[attr].env
    try:
        settings = load({env: value})
    except SettingError as exc:
        message = str(exc)
        assert_one_line(message)
        assert message.startswith(f"{env}=")
        if DECLS[attr].secret:
            assert message.startswith(f"{env}=<hidden, {len(value)} characters> is not valid (")
    else:
        assert isinstance(settings, S.Settings)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("100", 100), ("1kb", 1000), ("2 KiB", 2048), ("500MB", 500_000_000), ("1.5GiB", 3 * 1024**3 // 2)],
)
def test_sizes_take_decimal_and_binary_units(raw, expected):
    assert S.parse_size(raw) == expected


def test_retention_is_off_unless_a_limit_is_set():
    assert not S.load({}).retention
    assert S.load({"GUNICORN_PYINSTRUMENT_MAX_BYTES": "10MB"}).max_bytes == 10_000_000
    assert S.load({"GUNICORN_PYINSTRUMENT_MAX_REPORTS": "7"}).retention


def test_recorded_headers_are_lower_case_and_unique():
    got = load({"GUNICORN_PYINSTRUMENT_RECORD_HEADERS": "User-Agent, x-request-id,USER-AGENT"})
    assert got.record_headers == ("user-agent", "x-request-id")
    assert load({}).record_headers == () and load({}).record_query is False


# --- the schedule: its window at the start of each period, aligned to the epoch ---

THIRTY_IN_TEN = Schedule(duration=30.0, period=600.0)


def test_parsed_schedule():
    assert parse_schedule("30s/10m") == THIRTY_IN_TEN
    assert parse_schedule("0.5m/600s") == THIRTY_IN_TEN


@pytest.mark.parametrize(
    ("now", "active"),
    [
        (0.0, True),  # the epoch itself starts a window
        (29.999, True),
        (30.0, False),  # the end is excluded
        (30.001, False),
        (599.999, False),
        (600.0, True),  # the next period
        (615.5, True),
        (630.0, False),
        (1_700_000_400.0, True),  # 1_700_000_400 % 600 == 0: aligned to the epoch, not to start-up
        (1_700_000_429.9, True),
        (1_700_000_430.0, False),
        (1_700_000_399.0, False),
    ],
)
def test_schedule_window_at_the_start_of_each_period(now, active):
    assert THIRTY_IN_TEN.active(now) is active


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_schedule_active_is_now_modulo_period_below_duration(now):
    assert THIRTY_IN_TEN.active(now) is (now % 600 < 30)


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_schedule_with_duration_equal_to_period_is_always_active(now):
    assert parse_schedule("1h/1h").active(now)


def test_sub_second_schedule():
    schedule = parse_schedule("500ms/2s")
    assert [schedule.active(t) for t in (0.0, 0.499, 0.5, 1.9, 2.0, 2.25)] == [
        True,
        True,
        False,
        False,
        True,
        True,
    ]


# --- upload: the bucket URL and its defaults; retention limits refused with an upload ---


def test_upload_settings_parse_and_default():
    got = S.load({"GUNICORN_PYINSTRUMENT_UPLOAD": "s3://fleet-reports/prod/"})
    assert got.upload == S3Location("fleet-reports", "prod")
    defaults = S.load({})
    assert defaults.upload is None and defaults.s3_endpoint_url is None and defaults.cache_dir is None
    assert defaults.spool_max_bytes == 1_000_000_000
    assert S.load({"GUNICORN_PYINSTRUMENT_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}).s3_endpoint_url


@pytest.mark.parametrize("limit", ["GUNICORN_PYINSTRUMENT_MAX_REPORTS", "GUNICORN_PYINSTRUMENT_MAX_BYTES"])
def test_retention_limits_are_refused_with_upload(limit):
    with pytest.raises(S.SettingError) as info:
        S.load({"GUNICORN_PYINSTRUMENT_UPLOAD": "s3://fleet-reports", limit: "100"})
    message = str(info.value)
    assert message.startswith(f"{limit}='100' cannot be used with GUNICORN_PYINSTRUMENT_UPLOAD")
    assert "\n" not in message and "lifecycle" in message
