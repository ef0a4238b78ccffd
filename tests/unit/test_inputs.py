"""What users type (``inputs.py``): what the settings', the command line's and the query's own tests
leave out. Durations take the same units wherever they are typed, an age counts back from a given
time, a count's message follows its bounds, and a regular expression too large to compile is
refused like any bad one."""

from __future__ import annotations

import re

import pytest

from gunicorn_pyinstrument.inputs import (
    parse_count,
    parse_regex,
    parse_s3_url,
    parse_seconds,
    parse_span,
    parse_time,
)


@pytest.mark.parametrize(
    ("text", "seconds"), [("250ms", 0.25), ("1.5h", 5400.0), ("2m", 120.0), (" 3 s ", 3.0), ("7", 7.0)]
)
def test_a_duration_reads_the_same_as_a_query_key_and_in_a_schedule(text, seconds):
    assert parse_seconds(text) == parse_span(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1d", "2S", "1e3", "-1s", "s", ""])
def test_a_duration_refused_as_a_query_key_is_refused_in_a_schedule(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_seconds(text)
    with pytest.raises(ValueError, match="bad duration"):
        parse_span(text)


def test_an_age_counts_back_from_now_and_needs_a_unit():
    assert parse_time("90s", now=1000.0) == 910.0
    assert parse_time(" 3d ", now=1_000_000.0) == 1_000_000.0 - 3 * 86400
    for text in ("90", "5ms"):
        with pytest.raises(ValueError, match="not a time"):
            parse_time(text, now=1000.0)


@pytest.mark.parametrize(
    ("text", "bounds", "message"),
    [
        ("-1", {}, "negative"),
        ("0", {"minimum": 1}, "less than 1"),
        ("0", {"minimum": 1, "maximum": 10}, "out of range"),
        ("11", {"minimum": 1, "maximum": 10}, "out of range"),
        ("1.5", {}, "not a whole number"),
    ],
)
def test_a_count_says_what_is_wrong_with_it(text, bounds, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        parse_count(text, **bounds)
    assert parse_count(" 10 ", **bounds) == 10


def test_a_regex_too_large_to_compile_is_a_bad_regex():
    with pytest.raises(ValueError, match=re.escape("bad regular expression 'a{4294967296}': OverflowError")):
        parse_regex("a{4294967296}")
    with pytest.raises(ValueError, match=re.escape("bad regular expression (OverflowError")):
        parse_regex("a{4294967296}", quote=False)


# --- s3:// URLs ---


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://fleet-reports", "fleet-reports", ""),
        ("s3://fleet-reports/", "fleet-reports", ""),
        ("s3://fleet-reports/prod/web/", "fleet-reports", "prod/web"),
        ("s3://my.bucket-1/a", "my.bucket-1", "a"),
    ],
)
def test_s3_urls_parse(url, bucket, prefix):
    location = parse_s3_url(url)
    assert (location.bucket, location.prefix) == (bucket, prefix)
    assert str(location) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "fleet-reports/x",
        "http://fleet-reports",
        "s3://",
        "s3://ab",
        "s3://Upper",
        "s3://a_b/x",
        "s3://abc/a//b",
        "s3://abc/../x",
        "s3://abc/a\nb",
    ],
)
def test_bad_s3_urls_are_refused(url):
    with pytest.raises(ValueError):
        parse_s3_url(url)
