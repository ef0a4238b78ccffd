"""The static files the pages load: installed with the package, served by name from a fixed list,
the vendored ones exactly as VENDORED.md records them, and none that loads anything from
elsewhere."""

from __future__ import annotations

import hashlib
import re

import pytest

from gunicorn_pyinstrument.web import assets
from gunicorn_pyinstrument.web.response import HTTPError


def test_the_pages_assets_are_listed() -> None:
    assert {
        "common.js",
        "flame.js",
        "chart.js",
        "diff.js",
        "vendor/uplot/uPlot.iife.min.js",
        "vendor/uplot/uPlot.min.css",
    } <= set(assets.ASSETS)
    assert assets.url("flame.js") == "/static/flame.js"
    with pytest.raises(KeyError):
        assets.url("missing.js")


def test_vendored_files_match_their_record() -> None:
    record = (assets.STATIC / "VENDORED.md").read_text()
    listed = re.findall(r"^([0-9a-f]{64})  (vendor/\S+)$", record, re.MULTILINE)
    assert {path for _, path in listed} >= {
        "vendor/uplot/uPlot.iife.min.js",
        "vendor/uplot/uPlot.min.css",
        "vendor/uplot/LICENSE",
    }
    for digest, path in listed:
        assert hashlib.sha256((assets.STATIC / path).read_bytes()).hexdigest() == digest, path
    assert "| uPlot | 1.6.32 | MIT" in record
    assert "(v1.6.32)" in (assets.STATIC / "vendor/uplot/uPlot.iife.min.js").read_text()[:80]


@pytest.mark.parametrize(
    "parts",
    [
        ["..", "security.py"],
        ["vendor", "uplot", "LICENSE"],
        ["VENDORED.md"],
        [""],
        ["flame.js", ""],
        ["%2e%2e"],
    ],
)
def test_only_listed_files_are_served(parts: list[str]) -> None:
    with pytest.raises(HTTPError) as error:
        assets.asset_response(parts)
    assert error.value.status == 404


def test_a_script_is_served_as_javascript() -> None:
    response = assets.asset_response(["flame.js"])
    assert response.content_type == "text/javascript; charset=utf-8"
    assert response.body == (assets.STATIC / "flame.js").read_bytes()


def test_no_asset_names_another_host() -> None:
    """Nothing to fetch from elsewhere: no URL in a script or style sheet but the SVG namespace and
    the library's own banner comment; no @import, no font or image from a URL."""
    allowed = {"http://www.w3.org/2000/svg", "https://github.com/leeoniya/uPlot"}  # a namespace, a comment
    for name, path in assets.ASSETS.items():
        text = path.read_text()
        assert set(re.findall(r"https?://[^\s\"'`)]+", text)) <= allowed, name
        assert "@import" not in text and "url(" not in text.replace("createObjectURL(", ""), name
