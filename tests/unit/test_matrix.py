"""``make test-matrix`` (``tests/matrix.py``) tests the ranges ``pyproject.toml`` declares: its oldest
combination pins their lower bounds, every gunicorn major release in the range and every Python from
the lowest has a combination, and the browser test runs once."""

from __future__ import annotations

import re
from pathlib import Path

import matrix

PYPROJECT = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()


def declared(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """A dependency's ``>=LOW,<HIGH`` from pyproject.toml, as version tuples."""
    low, high = re.search(rf'"{name}>=([\d.]+),<([\d.]+)"', PYPROJECT).groups()
    return tuple(map(int, low.split("."))), tuple(map(int, high.split(".")))


def pinned(spec: str) -> tuple[int, ...]:
    return tuple(int(part) for part in spec.removeprefix("==").split(".") if part != "*")


def padded(version: tuple[int, ...]) -> tuple[int, ...]:
    return (*version, 0, 0)[:3]


def test_the_oldest_combination_pins_the_declared_lower_bounds():
    [oldest] = [c for c in matrix.COMBINATIONS if c.name == "oldest"]
    python = re.search(r'requires-python = ">=([\d.]+)"', PYPROJECT).group(1)
    assert oldest.pythons == (python,)
    for name in ("gunicorn", "pyinstrument"):
        assert padded(pinned(getattr(oldest, name))) == padded(declared(name)[0]), name


def test_every_gunicorn_major_release_in_the_range_is_tested():
    low, high = declared("gunicorn")
    majors = {pinned(c.gunicorn)[0] for c in matrix.COMBINATIONS if c.gunicorn != matrix.LATEST}
    # The newest major is the "latest" combination's.
    assert set(range(low[0], high[0] - 1)) <= majors
    assert any(c.gunicorn == matrix.LATEST for c in matrix.COMBINATIONS)


def test_every_python_from_the_lowest_has_a_combination():
    tried = {p for c in matrix.COMBINATIONS for p in c.pythons}
    assert set(matrix.PYTHONS) <= tried


def test_the_browser_test_runs_in_one_combination():
    assert [c.name for c in matrix.COMBINATIONS if c.browser] == ["newest"]
