"""Shared fixtures. The plain helpers behind them (HTTP, reading reports) are in ``support.py``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

# support.py sits next to this file; make it importable whatever pytest's import mode.
if str(Path(__file__).parent) not in sys.path:
    sys.path.insert(0, str(Path(__file__).parent))

from support import GunicornFactory

# Property tests check what a value does, never how fast: on a loaded machine one example can take
# hundreds of milliseconds, and hypothesis's default deadline would call that a failure.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[GunicornFactory]:
    """Start real gunicorn servers: ``server = gunicorn("-c", CONFIG_FILE, "-w", "1", FLASK_APP,
    env=profiling_env(report_dir))``; ``gunicorn.run(...)`` for a start that must fail.
    Every server is stopped by pid at teardown."""
    logs = tmp_path / "gunicorn-logs"
    logs.mkdir()
    factory = GunicornFactory(logs)
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def report_dir(tmp_path: Path) -> Path:
    """Where the test's reports go; not created (the plugin creates it)."""
    return tmp_path / "reports"
