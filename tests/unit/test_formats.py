"""Formats: every report format rendered from a real pyinstrument session, and the session read back."""

from __future__ import annotations

import json
import pstats

import pytest
from real_profile import as_json, profile_busy_marker

from gunicorn_pyinstrument.directory import FORMAT_SUFFIXES
from gunicorn_pyinstrument.formats import load_session, render


@pytest.fixture(scope="module")
def session():
    return profile_busy_marker()


def test_session_round_trips(session):
    loaded = load_session(render(session, "session"))
    assert as_json(loaded) == as_json(session)
    assert loaded.sample_count == session.sample_count > 0


def test_speedscope_is_json_naming_the_function(session):
    doc = json.loads(render(session, "speedscope"))
    assert "speedscope" in doc["$schema"]
    assert "busy_marker_function" in {frame["name"] for frame in doc["shared"]["frames"]}


def test_pstats_loads_with_pstats(session, tmp_path):
    path = tmp_path / "r.pstats"
    path.write_bytes(render(session, "pstats"))
    stats = pstats.Stats(str(path))
    assert "busy_marker_function" in {func for (_, _, func) in stats.stats}  # type: ignore[attr-defined]


def test_html_and_text(session):
    assert b"<html" in render(session, "html").lower()
    text = render(session, "text").decode("utf-8")
    assert "busy_marker_function" in text
    assert "\x1b[" not in text  # no colour codes in a file


def test_unknown_format(session):
    with pytest.raises(ValueError, match="unknown format"):
        render(session, "pdf")


def test_every_declared_format_renders(session):
    for fmt in FORMAT_SUFFIXES:
        assert render(session, fmt)
