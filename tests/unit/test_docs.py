"""The docs name tests that exist: every ``tests/...py::test_name`` they cite is defined there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CITED = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?")


def test_cited_tests_exist():
    missing = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for path, name in CITED.findall(doc.read_text()):
            source = ROOT / path
            if not source.exists():
                missing.append(f"{doc.name}: {path}")
            elif name and not re.search(rf"def {name}\b", source.read_text()):
                missing.append(f"{doc.name}: {path}::{name}")
    assert missing == []
