"""Choosing which requests are profiled: rate, include/exclude filters, the token, header lookup and
path decoding, and how Selector.decide combines them with the gate."""

from __future__ import annotations

import re

import pytest
from fakes import Clock, Exists, never_exists
from hypothesis import assume, given
from hypothesis import strategies as st

from gunicorn_pyinstrument.settings import TOKEN_HEADER, Schedule, load
from gunicorn_pyinstrument.worker.choosing import (
    TOKEN_HEADER_UPPER,
    TRIGGER_SAMPLE,
    TRIGGER_TOKEN,
    Selector,
    decoded_path,
    header_value,
)
from gunicorn_pyinstrument.worker.switch import CONTROL_CHECK_SECONDS, Gate

TOKEN = "k7Qz-9fXw_2LmP4r!tY8"


class FakeRandom:
    """Returns the given values in turn and counts the calls."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> float:
        self.calls += 1
        return self.values.pop(0)


def never_called() -> float:
    raise AssertionError("random() must not be called")


# --- rate ---


@pytest.mark.parametrize("path", ["/", "/api/users", ""])
def test_rate_zero_never_profiles_and_draws_no_random_number(path):
    assert Selector(0.0, random=never_called).decide(path) is None


@pytest.mark.parametrize("path", ["/", "/api/users", ""])
def test_rate_one_always_profiles_and_draws_no_random_number(path):
    assert Selector(1.0, random=never_called).decide(path) == TRIGGER_SAMPLE


@pytest.mark.parametrize(
    ("draw", "expected"), [(0.0, TRIGGER_SAMPLE), (0.2999, TRIGGER_SAMPLE), (0.3, None), (0.9, None)]
)
def test_fractional_rate_compares_the_draw(draw, expected):
    rnd = FakeRandom(draw)
    assert Selector(0.3, random=rnd).decide("/x") == expected
    assert rnd.calls == 1


def test_fractional_rate_chooses_that_fraction_of_uniform_draws():
    draws = [i / 1000 for i in range(1000)]
    selector = Selector(0.3, random=FakeRandom(*draws))
    chosen = sum(selector.decide("/x") == TRIGGER_SAMPLE for _ in draws)
    assert chosen == 300


# --- include / exclude ---


def test_include_limits_eligible_paths():
    selector = Selector(1.0, include=re.compile(r"^/api/"), random=never_called)
    assert selector.decide("/api/users") == TRIGGER_SAMPLE
    assert selector.decide("/static/app.js") is None
    assert selector.decide("/v1/api/users") is None  # anchored: search, not a substring rule


def test_include_uses_search_not_match():
    selector = Selector(1.0, include=re.compile(r"/api/"))
    assert selector.decide("/v1/api/users") == TRIGGER_SAMPLE


def test_exclude_wins_over_include():
    selector = Selector(1.0, include=re.compile(r"^/api/"), exclude=re.compile(r"/health$"))
    assert selector.decide("/api/users") == TRIGGER_SAMPLE
    assert selector.decide("/api/health") is None
    assert selector.decide("/health") is None  # not included in the first place


def test_filtered_out_paths_draw_no_random_number():
    selector = Selector(0.5, include=re.compile("^/a"), exclude=re.compile("x"), random=never_called)
    assert selector.decide("/b") is None
    assert selector.decide("/ax") is None


def test_rate_applies_after_filters():
    rnd = FakeRandom(0.9, 0.1)
    selector = Selector(0.5, include=re.compile("^/a"), random=rnd)
    assert selector.decide("/a") is None
    assert selector.decide("/a") == TRIGGER_SAMPLE
    assert rnd.calls == 2


# --- token ---


def token_selector(rate: float = 0.0, **kw) -> Selector:
    return Selector(rate, token=TOKEN.encode("ascii"), random=never_called, **kw)


def test_right_token_triggers_even_with_rate_zero_and_excluded_path():
    selector = token_selector(0.0, include=re.compile("^/only-this$"), exclude=re.compile(".*"))
    assert selector.decide("/admin/secret", TOKEN) == TRIGGER_TOKEN


def test_right_token_wins_over_sampling():
    assert token_selector(1.0).decide("/", TOKEN) == TRIGGER_TOKEN


WRONG_TOKENS = [
    None,
    "",
    TOKEN[:-1],  # prefix only
    TOKEN[:1],
    TOKEN + "x",  # overlong
    TOKEN * 2,
    TOKEN.lower(),
    " " + TOKEN,
    TOKEN + "\u00e9",  # non-ASCII
    "\u00e9" * len(TOKEN),
    "\udcff" * len(TOKEN),  # a lone surrogate, as a mis-decoded header could give
    "\x00" * len(TOKEN),
]


@pytest.mark.parametrize("offered", WRONG_TOKENS, ids=repr)
def test_wrong_or_missing_token_does_not_trigger(offered):
    assert token_selector(0.0).decide("/", offered) is None


@pytest.mark.parametrize("offered", WRONG_TOKENS, ids=repr)
def test_wrong_token_changes_nothing_for_a_sampled_request(offered):
    assert token_selector(1.0).decide("/", offered) == TRIGGER_SAMPLE


def test_no_configured_token_never_triggers_token():
    assert Selector(0.0).decide("/", TOKEN) is None
    assert Selector(0.0).token_matches(TOKEN) is False


@given(st.text(st.characters(exclude_categories=()), max_size=64))
def test_only_the_exact_token_triggers(offered):
    assume(offered != TOKEN)
    assert token_selector(0.0).decide("/", offered) is None


def test_from_settings_carries_rate_filters_and_token(tmp_path):
    s = load(
        {
            "GUNICORN_PYINSTRUMENT_DIR": str(tmp_path),
            "GUNICORN_PYINSTRUMENT_SAMPLE_RATE": "0",
            "GUNICORN_PYINSTRUMENT_EXCLUDE": "^/private",
            "GUNICORN_PYINSTRUMENT_TOKEN": TOKEN,
        }
    )
    selector = Selector.from_settings(s)
    assert selector.token == TOKEN.encode("ascii")
    assert selector.decide("/private/x", TOKEN) == TRIGGER_TOKEN
    assert selector.decide("/public", TOKEN[:-1]) is None
    assert Selector.from_settings(load({})).token is None


# --- header lookup and path decoding ---


def test_header_constant_matches_the_documented_header():
    assert TOKEN_HEADER_UPPER == TOKEN_HEADER.upper() == "X-PYINSTRUMENT-TOKEN"


@pytest.mark.parametrize("name", ["X-PYINSTRUMENT-TOKEN", "x-pyinstrument-token", "X-Pyinstrument-Token"])
def test_header_value_is_case_insensitive(name):
    headers = [("HOST", "example.com"), (name, "first"), ("X-PYINSTRUMENT-TOKEN", "second")]
    # Repeated: every value, joined by commas as in a WSGI environ (so a repeated token never matches).
    assert header_value(headers, TOKEN_HEADER_UPPER) == "first,second"
    assert header_value(headers[:2], TOKEN_HEADER_UPPER) == "first"


def test_header_value_missing():
    assert header_value([("HOST", "x"), ("X-PYINSTRUMENT-TOKENS", "y")], TOKEN_HEADER_UPPER) is None
    assert header_value([], TOKEN_HEADER_UPPER) is None
    assert header_value(iter([("A", "1")]), "A") == "1"  # any iterable, consumed lazily


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("/a%20b", "/a b"),
        ("/caf%C3%A9", "/café"),
        ("/%2Fetc%2Fpasswd", "//etc/passwd"),
        ("/bad%ff", "/bad\ufffd"),
        ("/trunc%", "/trunc%"),
        ("/trunc%e", "/trunc%e"),
        ("/plain", "/plain"),
    ],
)
def test_decoded_path_examples(raw, decoded):
    assert decoded_path(raw) == decoded


PERCENTISH = st.text(
    st.one_of(
        st.sampled_from("%0123456789abcdefABCDEF/+?"),
        st.characters(exclude_categories=()),
    ),
    max_size=200,
)


@given(PERCENTISH)
def test_decoded_path_never_raises(raw):
    assert isinstance(decoded_path(raw), str)


@given(st.binary(max_size=100))
def test_decoded_path_of_any_percent_encoded_bytes(data):
    raw = "".join(f"%{b:02X}" for b in data)
    assert decoded_path(raw) == data.decode("utf-8", "replace")


# --- Selector.decide with a gate ---

GATE_TOKEN = "gate-token-0123456789"
CONTROL = "/run/profiling.on"
THIRTY_IN_TEN = Schedule(duration=30.0, period=600.0)


def selector(gate: Gate, rate: float = 1.0) -> Selector:
    return Selector(rate, token=GATE_TOKEN.encode(), gate=gate)


def test_control_file_absent_nothing_profiled_even_with_the_token():
    exists = Exists(present=False)
    sel = selector(Gate(control_file=CONTROL, monotonic=Clock(0.0), exists=exists))
    assert sel.decide("/alpha") is None
    assert sel.decide("/alpha", GATE_TOKEN) is None
    assert sel.decide("/alpha", "wrong-token-0123456789") is None


def test_control_file_present_sampled_and_token_requests_profiled():
    sel = selector(Gate(control_file=CONTROL, monotonic=Clock(0.0), exists=Exists(present=True)))
    assert sel.decide("/alpha") == TRIGGER_SAMPLE
    assert sel.decide("/alpha", GATE_TOKEN) == TRIGGER_TOKEN


def test_control_file_toggles_selection_after_the_check_interval():
    mono, exists = Clock(0.0), Exists(present=False)
    sel = selector(Gate(control_file=CONTROL, monotonic=mono, exists=exists))
    assert sel.decide("/a", GATE_TOKEN) is None
    exists.present = True
    mono.now = CONTROL_CHECK_SECONDS
    assert sel.decide("/a") == TRIGGER_SAMPLE
    exists.present = False
    mono.now = 2 * CONTROL_CHECK_SECONDS
    assert sel.decide("/a", GATE_TOKEN) is None


@pytest.mark.parametrize("rate", [1.0, 0.5, 0.0])
def test_schedule_closed_sampled_requests_skipped_but_the_token_works(rate):
    sel = selector(Gate(THIRTY_IN_TEN, clock=Clock(1_700_000_500.0), exists=never_exists), rate)
    assert sel.decide("/alpha") is None
    assert sel.decide("/alpha", "not-the-token-0123456") is None
    assert sel.decide("/alpha", GATE_TOKEN) == TRIGGER_TOKEN


def test_schedule_open_sampled_requests_profiled():
    sel = selector(Gate(THIRTY_IN_TEN, clock=Clock(1_700_000_410.0), exists=never_exists))
    assert sel.decide("/alpha") == TRIGGER_SAMPLE


def test_selector_from_settings_builds_the_gate(tmp_path):
    control = tmp_path / "on"
    settings = load(
        {
            "GUNICORN_PYINSTRUMENT_SCHEDULE": "30s/10m",
            "GUNICORN_PYINSTRUMENT_CONTROL_FILE": str(control),
            "GUNICORN_PYINSTRUMENT_TOKEN": GATE_TOKEN,
        }
    )
    sel = Selector.from_settings(settings)
    assert sel.gate.schedule == THIRTY_IN_TEN
    assert sel.gate.control_file == str(control)
    assert sel.decide("/", GATE_TOKEN) is None  # the file does not exist
