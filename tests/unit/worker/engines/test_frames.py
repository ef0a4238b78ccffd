"""Frame identifiers: pyinstrument's format, built from a frame, cached by instruction offset."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from pyinstrument.frame_info import parse_frame_info
from pyinstrument.low_level.stat_profile import get_frame_info

from gunicorn_pyinstrument.worker.engines import frames as frames_module
from gunicorn_pyinstrument.worker.engines.frames import frame_identifier


def identifiers_here() -> tuple[str, str]:
    """(ours, pyinstrument's) identifier of the caller's frame, both taken at the same line."""
    frame = sys._getframe(1)
    return frame_identifier(frame), get_frame_info(frame)


def plain_function() -> tuple[str, str]:
    return identifiers_here()


class Widget:
    def method(self) -> tuple[str, str]:
        return identifiers_here()

    @classmethod
    def maker(cls) -> tuple[str, str]:
        return identifiers_here()

    def with_closure(self) -> tuple[str, str]:
        def inner() -> tuple[str, str]:
            return identifiers_here()

        return inner()


class Gadget(Widget):
    """Inherits ``method`` and ``maker``: their frames name the class that defines them."""


@pytest.mark.parametrize(
    ("call", "name", "owner"),
    [
        (plain_function, "plain_function", None),
        (Widget().method, "method", "Widget"),
        (Widget.maker, "maker", "Widget"),
        (Widget().with_closure, "inner", None),
        (lambda: identifiers_here(), "<lambda>", None),
    ],
    ids=["function", "method", "classmethod", "closure-in-method", "lambda"],
)
def test_frame_identifier_is_pyinstruments(call, name, owner):
    ours, theirs = call()
    assert ours == theirs
    identifier, attributes = parse_frame_info(ours)
    assert identifier.split("\x00")[0] == name
    assert ("c" + owner if owner else None) in [*attributes, None]
    assert any(a.startswith("c") for a in attributes) == (owner is not None)


def test_frame_identifier_format():
    ours, _ = Widget().method()
    identifier, attributes = parse_frame_info(ours)
    name, filename, first_line = identifier.split("\x00")
    assert name == "method"
    assert filename == __file__
    assert int(first_line) == Widget.method.__code__.co_firstlineno
    assert attributes[0] == "cWidget"
    assert attributes[1].startswith("l") and int(attributes[1][1:]) > int(first_line)

    ours, _ = plain_function()
    identifier, attributes = parse_frame_info(ours)
    assert identifier.split("\x00")[0] == "plain_function"
    assert [a[0] for a in attributes] == ["l"]  # no class for a plain function


def test_cached_identifiers_match_and_share_one_string_per_line(monkeypatch):
    monkeypatch.setattr(frames_module, "_IDENTIFIERS", {})
    monkeypatch.setattr(frames_module, "_BY_LINE", {})
    here = sys._getframe
    # Two reads on one line: the same line, two instruction offsets.
    a, b = frames_module.cached_identifier(here(0)), frames_module.cached_identifier(here(0))
    assert a == frame_identifier(here(0)).rsplit("\x01l", 1)[0] + f"\x01l{here(0).f_lineno - 1}"
    assert b is a  # one string per line, whichever offset
    assert len(frames_module._IDENTIFIERS) == 2
    assert len(frames_module._BY_LINE) == 1
    # A walk gives what frame_identifier gives for every frame, outermost first (the callers, which
    # stay on one line while this test runs).
    frame = here(1)
    stack = frames_module.stack_of(frame, "root")
    expected = []
    f: Any = frame
    while f is not None:
        expected.append(frame_identifier(f))
        f = f.f_back
    assert stack == ["root", *reversed(expected)]


def test_identifier_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(frames_module, "_IDENTIFIERS", {})
    monkeypatch.setattr(frames_module, "_BY_LINE", {})
    monkeypatch.setattr(frames_module, "_IDENTIFIERS_LIMIT", 3)
    seen = [
        frames_module.cached_identifier(sys._getframe(0)),
        frames_module.cached_identifier(sys._getframe(0)),
        frames_module.cached_identifier(sys._getframe(0)),
        frames_module.cached_identifier(sys._getframe(0)),
        frames_module.cached_identifier(sys._getframe(0)),
    ]
    assert len({s.rsplit("\x01l", 1)[1] for s in seen}) == 5  # five lines
    assert len(frames_module._IDENTIFIERS) <= 3
    assert len(frames_module._BY_LINE) <= 3
    frame = sys._getframe(0)
    assert frames_module.cached_identifier(frame) == frame_identifier(frame)


@pytest.mark.parametrize("call", [Gadget().method, Gadget.maker], ids=["method", "classmethod"])
def test_an_inherited_method_is_named_by_the_class_that_defines_it(call):
    """The same on every Python (``co_qualname`` from 3.11, the MRO before): a code object has one
    identifier, whichever subclass runs it, so the cache by code is right."""
    ours, _ = call()
    _, attributes = parse_frame_info(ours)
    assert "cWidget" in attributes
