"""Properties of the code that turns request data into names and of the settings parsers, over
generated input.

Already proved elsewhere, and not repeated here: the character set, length and leading dot of
``sanitize_path``, ``sanitize_method`` and ``Report.make_name`` for request reports, and that
their names pass ``check_name`` with every suffix (``tests/unit/test_report.py``); fixed lists of
names ``check_name`` refuses and accepts (``tests/unit/stores/test_local.py``); and that arbitrary text in
any one variable parses or gives a one-line ``SettingError`` (``tests/unit/test_settings.py``).

Added here: names are stable and idempotent, the worker and counter part of a name is kept
whole (so two reports never share a name), window reports are named as safely as request ones,
``check_name`` either refuses a name with ``ValueError`` or accepts one that ``LocalStore`` writes
directly inside its directory; and the settings parsers meet values built to reach their deeper
branches (huge numbers, repetition counts, deep nesting, units, lists, URLs), alone and several at
once, without any exception but ``SettingError``.
"""

from __future__ import annotations

import math
import os
import re
import tempfile

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gunicorn_pyinstrument import settings as S
from gunicorn_pyinstrument.directory import FORMAT_SUFFIXES
from gunicorn_pyinstrument.report import (
    Report,
    RequestFacts,
    WindowFacts,
    WorkerIdentity,
    sanitize_method,
    sanitize_path,
)
from gunicorn_pyinstrument.settings import SettingError, load
from gunicorn_pyinstrument.stores.local import LocalStore, check_name

ANY_CHAR = st.characters(exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=300)
NAME = re.compile(r"[0-9][A-Za-z0-9._-]*")
DECLS = dict(S.declarations())


# --- names ---

PATH = st.one_of(
    ANY_TEXT,
    st.lists(
        st.sampled_from(["..", ".", "/", "\\", "\x00", "%2f", "a", "é", "-", "_", " "]), max_size=80
    ).map("".join),
)
HEX6 = st.text("0123456789abcdef", min_size=6, max_size=6)


def identity(pid: int, instance: str) -> WorkerIdentity:
    return WorkerIdentity(pid=pid, age=1, worker_class="SyncWorker", hostname="h", instance=instance)


@given(PATH)
@example("root")
@example("/" + "a" * 200)
def test_sanitize_path_is_stable_and_idempotent(path):
    once = sanitize_path(path)
    assert sanitize_path(path) == once
    assert sanitize_path(once) == once  # a safe part is its own rendering
    assert once.isascii() and once not in (".", "..")


@given(st.text(ANY_CHAR, max_size=100))
def test_sanitize_method_is_stable_and_idempotent(method):
    once = sanitize_method(method)
    assert sanitize_method(method) == once == sanitize_method(once)


@given(st.from_regex(r"[A-Z0-9]{1,16}", fullmatch=True))
def test_sanitize_method_keeps_a_plain_method(method):
    assert sanitize_method(method) == method


REQUEST_FACTS = st.builds(
    RequestFacts,
    method=st.text(ANY_CHAR, max_size=50),
    path=PATH,
    status=st.none() | st.integers(100, 599),
    started_at=st.floats(0, 4_102_444_800),
    duration=st.floats(0, 1e7),
    trigger=st.just("sample"),
    outcome=st.sampled_from(["", "timeout"]),
    query=st.none() | ANY_TEXT,
    headers=st.none() | st.dictionaries(st.sampled_from(["user-agent", "x-request-id"]), ANY_TEXT),
)
WINDOW_FACTS = st.builds(WindowFacts, started_at=st.floats(0, 4_102_444_800), duration=st.floats(0, 1e7))


@given(
    facts=st.one_of(REQUEST_FACTS, WINDOW_FACTS),
    pid=st.integers(1, 2**22),
    instance=HEX6,
    sequence=st.integers(1, 10**15),
)
def test_make_name_is_safe_stable_and_ends_with_its_worker_and_counter(facts, pid, instance, sequence):
    name = Report.make_name(facts, identity(pid, instance), sequence)
    assert name == Report.make_name(facts, identity(pid, instance), sequence)
    assert NAME.fullmatch(name), name
    assert name.isascii()
    for suffix in [*FORMAT_SUFFIXES.values(), ".meta.json"]:
        assert len((name + suffix).encode()) <= 255
        assert check_name(name + suffix)
    # The last part is exactly the worker and its counter: names of different reports differ here.
    assert name.rsplit("_", 1)[1] == f"{pid}-{instance}-{sequence}"
    # The query string and recorded headers never reach the name.
    if isinstance(facts, RequestFacts):
        assert name == Report.make_name(
            RequestFacts(**{**facts.__dict__, "query": None, "headers": None}),
            identity(pid, instance),
            sequence,
        )


@given(st.text(ANY_CHAR, max_size=300))
@example("..")
@example(".")
@example("a/../b")
@example("\udcff" * 255)
@example("é" * 128)
@example("x" * 255)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_check_name_refuses_or_keeps_the_file_inside(name):
    try:
        checked = check_name(name)
    except ValueError as exc:
        assert "unsafe file name" in str(exc)
        return
    assert checked == name
    assert os.path.basename(name) == name and not name.startswith(".")
    assert not {"/", "\\", "\x00"} & set(name)
    try:
        encoded = os.fsencode(name)
    except UnicodeEncodeError:
        return  # a lone surrogate the file system cannot hold: refused by os.open, not here
    assert len(encoded) <= 255
    with tempfile.TemporaryDirectory() as root:
        written = LocalStore(root).put(name, b"x")
        assert os.path.dirname(written) == root
        assert os.listdir(root) == [name]


# --- settings ---

DIGITS = st.text("0123456789", min_size=1, max_size=20) | st.integers(300, 1000).map(lambda n: "9" * n)
UNIT = st.sampled_from(["", "ms", "s", "m", "h", "kb", "KiB", "MB", "gib", "TB", "x", "%", " MB", "octets"])
FRACTION = st.sampled_from(["", ".", ".5", ".000001"]) | DIGITS.map(lambda d: "." + d)
#: What the number parsers are written for: digits, a fraction, a unit, blanks.
PLAIN_NUMBER = st.builds(lambda whole, frac, unit: f"{whole}{frac}{unit}", DIGITS, FRACTION, UNIT)
#: And what they are not: signs, exponents, other spellings of numbers.
ODD_NUMBER = st.builds(
    lambda sign, number, exp, pad: f"{pad}{sign}{number}{exp}{pad}",
    st.sampled_from(["", "-", "+"]),
    PLAIN_NUMBER,
    st.sampled_from(["", "e308", "e-400", "e400", "E5"]),
    st.sampled_from(["", " ", "\t"]),
) | st.sampled_from(["nan", "inf", "-inf", "1_000", "0x10", "0o777", "١٢٣", "1e309", "0640", "0o640", "+0"])
REGEX = st.lists(
    st.sampled_from(
        [
            *["(", ")", "[", "]", "{", "}", "a", "*", "+", "?", "|", "^", "$", "\\", "\\d", "(?i)", "(?P<"],
            *["{4294967296}", "{1,99999999999}", "{2,1}", "(?<=", "(?#", "\\N{", "\\u12", "(?(1)a|b)"],
            *[">", "(?P=x)"],
        ]
    ),
    max_size=40,
).map("".join) | st.integers(0, 5000).map(lambda n: "(" * n + "a" + ")" * n)
WORDS = st.lists(
    st.sampled_from([*FORMAT_SUFFIXES, "User-Agent", "X-Pyinstrument-Token", "a b", "", " ", "é", "pdf"]),
    max_size=8,
).map(",".join)
SPAN = st.builds(
    lambda whole, frac, unit: f"{whole}{frac}{unit}",
    DIGITS,
    FRACTION,
    st.sampled_from(["", "ms", "s", "m", "h"]),
)
SCHEDULE = st.builds(lambda a, b: f"{a}/{b}", SPAN, SPAN) | st.builds(
    lambda parts: "/".join(parts), st.lists(ODD_NUMBER, max_size=4)
)
URL = st.builds(
    lambda scheme, host, rest: f"{scheme}{host}{rest}",
    st.sampled_from(["s3://", "http://", "https://", "ftp://", "", "s3:/"]),
    st.sampled_from(
        ["bucket", "Bucket", "b", "my.bucket", "a..b", "[::1]", "[::1", "host:99999", "h:-1", ""]
    ),
    st.sampled_from(["", "/", "/p", "/a/../b", "//x", "/é", "/a\\b", ":80/x", "?q", "#f"]) | ANY_TEXT,
)
BUILT_VALUE = st.one_of(PLAIN_NUMBER, ODD_NUMBER, REGEX, WORDS, SCHEDULE, URL, ANY_TEXT)


def assert_names_variable(message: str, env: str) -> None:
    assert message and message.isprintable(), repr(message)
    assert "\n" not in message and "\r" not in message
    assert message.startswith(f"{env}="), message


@pytest.mark.parametrize("attr", list(DECLS))
@given(value=BUILT_VALUE)
@example(value="a{4294967296}")
@example(value="(" * 3000 + ")" * 3000)
@example(value="1" + "0" * 400)
@example(value="1s/" + "9" * 400)
@example(value="1e-400")
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_built_values_parse_or_give_a_one_line_setting_error(attr, value):
    env = DECLS[attr].env
    try:
        settings_ = load({env: value})
    except SettingError as exc:
        assert_names_variable(str(exc), env)
        if DECLS[attr].secret:
            assert str(exc).startswith(f"{env}=<hidden, {len(value)} characters> is not valid (")
    else:
        assert isinstance(settings_, S.Settings)
        # What is accepted is usable: numbers are finite, a schedule's window fits in its period.
        parsed = getattr(settings_, attr)
        if isinstance(parsed, float):
            assert math.isfinite(parsed), parsed
        if isinstance(parsed, S.Schedule):
            assert math.isfinite(parsed.period) and 0 < parsed.duration <= parsed.period, parsed


@given(st.dictionaries(st.sampled_from(list(DECLS)), BUILT_VALUE, min_size=2, max_size=6))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_several_bad_values_name_the_first_in_declaration_order(values):
    """With several variables set, the error names the first wrong one (in the order of
    docs/configuration.md), and only SettingError is ever raised."""
    environ = {DECLS[a].env: v for a, v in values.items()}
    alone_ok = {}
    for attr, value in values.items():
        try:
            load({DECLS[attr].env: value})
            alone_ok[attr] = True
        except SettingError:
            alone_ok[attr] = False
    first_bad = next((DECLS[a].env for a in DECLS if a in values and not alone_ok[a]), None)
    try:
        load(environ)
    except SettingError as exc:
        message = str(exc)
        if first_bad is not None:
            assert_names_variable(message, first_bad)
        else:  # each value fine alone, refused together (settings that exclude each other)
            assert any(message.startswith(f"{env}=") for env in environ), message
            assert_names_variable(message, message.split("=", 1)[0])
    else:
        assert first_bad is None, first_bad
