"""The package's layers: imports run one way, and the reading side stays out of gunicorn.

Layers, lowest first: shared code; the catalog; the worker side, the helper process and the
reading side (none imports another); the entry points. A module may import its own layer's
modules (its own side's, for the sides) and lower layers' only.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "gunicorn_pyinstrument"
NAME = "gunicorn_pyinstrument"

SHARED = 0
CATALOG = 1
SIDE = 2
ENTRY = 3
SIDES = ("worker", "helper", "reading")
ENTRIES = ("__init__", "__main__", "config", "hooks", "chaining", "middleware", "django", "cli", "web")


def module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def layer(module: str) -> tuple[int, str]:
    top = module.split(".")[0]
    if top in ENTRIES:
        return ENTRY, top
    if top in SIDES:
        return SIDE, top
    if top == "catalog":
        return CATALOG, top
    return SHARED, top


def imports_of(module: str) -> set[str]:
    """Every module of the package that ``module`` imports, at the top or inside a function."""
    path = PACKAGE / (module.replace(".", "/") + ".py")
    is_package = not path.exists()
    if is_package:
        path = PACKAGE / module.replace(".", "/") / "__init__.py"
    tree = ast.parse(path.read_text())
    here = module.split(".") if module != "__init__" else []
    if not is_package:
        here = here[:-1]
    known = set(module_names())
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith(NAME):
                target = node.module[len(NAME) + 1 :]
            else:
                continue
            targets = [target] + [f"{target}.{a.name}" if target else a.name for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name[len(NAME) + 1 :] for a in node.names if a.name.startswith(NAME + ".")]
        for target in targets:
            if target in known:
                found.add(target)
    found.discard(module)
    return found


def test_imports_run_one_way():
    wrong = []
    for module in module_names():
        level, side = layer(module)
        for target in imports_of(module):
            target_level, target_side = layer(target)
            if target_level > level or (level == target_level == SIDE and target_side != side):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_no_import_cycles():
    graph = {module: imports_of(module) for module in module_names()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            # A package imports its own submodules to re-export them: not a cycle of concepts.
            if target.startswith(module + "."):
                continue
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target] if target in path else [module, target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize("mode", ["request", "worker"])
def test_the_master_imports_nothing_of_the_reading_side(tmp_path, mode):
    """What gunicorn's master imports with profiling on: the config module and every module a
    worker uses. Run in a fresh interpreter, so nothing this test process imported counts."""
    script = (
        "import json, sys\n"
        "import gunicorn_pyinstrument.config\n"
        "import gunicorn_pyinstrument.worker.request_mode, gunicorn_pyinstrument.worker.worker_mode\n"
        "import gunicorn_pyinstrument.worker.wrappers, gunicorn_pyinstrument.helper.process\n"
        "from tests.apps.modules_app import READING_SIDE\n"
        "print(json.dumps([n for n in READING_SIDE if n in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_PYINSTRUMENT")}
    env.update(
        GUNICORN_PYINSTRUMENT="1",
        GUNICORN_PYINSTRUMENT_DIR=str(tmp_path / "reports"),
        GUNICORN_PYINSTRUMENT_MODE=mode,
        GUNICORN_PYINSTRUMENT_FORMATS="session,html",
        GUNICORN_PYINSTRUMENT_MAX_REPORTS="100",
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == []
