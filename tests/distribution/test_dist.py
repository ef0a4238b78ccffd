"""The distributions, built as a release is (``python -m build``: the sdist, then the wheel from it).

The wheel holds the package and its metadata, nothing else, and ships ``py.typed``; installed into a
fresh virtualenv, with gunicorn and pyinstrument from the package index at the versions this suite
runs with, it profiles a request under a real gunicorn started from that virtualenv, away from this
checkout. The build and the install take most of a minute, once for the module.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from support import REPO_ROOT, GunicornFactory, clean_env, get, profiling_env, wait_for_metadata

import gunicorn_pyinstrument

PACKAGE = "gunicorn_pyinstrument"
#: Building (two isolated build environments) and installing from the index, on a busy machine.
SLOW_SECONDS = 300

pytestmark = pytest.mark.timeout(2 * SLOW_SECONDS)

APP = """
import time


def work(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(200))


def app(environ, start_response):
    work(0.05)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"installed\\n"]
"""


def _run(*cmd: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=SLOW_SECONDS)
    assert result.returncode == 0, f"{' '.join(cmd)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--outdir", str(out), str(REPO_ROOT))
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory, dists: dict[str, Path]) -> str:
    """A fresh virtualenv with the wheel installed, and the gunicorn and pyinstrument running here."""
    venv = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in ("gunicorn", "pyinstrument")]
    _run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(dists["wheel"]), *pins)
    return python


def test_the_wheel_holds_the_package_only(dists: dict[str, Path]) -> None:
    version = gunicorn_pyinstrument.__version__
    dist_info = f"gunicorn_pyinstrument-{version}.dist-info/"
    assert dists["wheel"].name == f"gunicorn_pyinstrument-{version}-py3-none-any.whl"
    with zipfile.ZipFile(dists["wheel"]) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(dist_info + "METADATA").decode()
    outside = [n for n in names if not n.startswith((f"{PACKAGE}/", dist_info))]
    assert outside == []
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # Every module of the checkout, and the marker that tells type checkers the package is typed.
    source = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in (REPO_ROOT / PACKAGE).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert source <= set(names), sorted(source - set(names))
    assert f"{PACKAGE}/py.typed" in names
    # The serve page's scripts and vendored libraries, with their record and licences: the page
    # loads nothing from elsewhere, so an installed package must hold every file it serves.
    static = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in (REPO_ROOT / PACKAGE / "web" / "static").rglob("*")
        if p.is_file()
    }
    assert {f"{PACKAGE}/web/static/{n}" for n in ("flame.js", "chart.js", "VENDORED.md")} <= static
    assert f"{PACKAGE}/web/static/vendor/uplot/LICENSE" in static
    assert static <= set(names), sorted(static - set(names))
    assert dist_info + "licenses/LICENSE" in names
    # The one version, taken from the package.
    assert f"\nVersion: {version}\n" in metadata
    assert "\nLicense-Expression: MIT\n" in metadata


def test_the_sdist_builds_the_wheel_and_carries_the_license(dists: dict[str, Path]) -> None:
    version = gunicorn_pyinstrument.__version__
    assert dists["sdist"].name == f"gunicorn_pyinstrument-{version}.tar.gz"
    with tarfile.open(dists["sdist"]) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "pyproject.toml", f"{PACKAGE}/py.typed"} <= names


def test_twine_check_passes(dists: dict[str, Path]) -> None:
    _run(sys.executable, "-m", "twine", "check", "--strict", str(dists["wheel"]), str(dists["sdist"]))


def test_installed_wheel_profiles_a_request(venv_python: str, tmp_path: Path) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "installed_app.py").write_text(APP)
    reports = tmp_path / "reports"
    # Away from the checkout: the package can only come from the virtualenv.
    away = {"PYTHONPATH": ""}
    where = _run(
        venv_python, "-c", f"import {PACKAGE}; print({PACKAGE}.__file__)", cwd=app_dir, env=clean_env(away)
    )
    assert where.startswith(str(Path(venv_python).parents[1])), where

    logs = tmp_path / "logs"
    logs.mkdir()
    factory = GunicornFactory(logs, python=venv_python)
    try:
        server = factory(
            "-c",
            f"python:{PACKAGE}.config",
            "installed_app:app",
            env={**profiling_env(reports, FORMATS="session,html"), **away},
            cwd=app_dir,
        )
        assert get(server.url + "/installed/1") == (200, b"installed\n")
        server.stop()
    finally:
        factory.cleanup()

    [record] = wait_for_metadata(reports, 1)
    assert record["path"] == "/installed/1" and record["status"] == 200
    assert {"session", "html"} <= set(record["files"])
    html = (reports / record["files"]["html"]).read_text()
    assert "work" in html
    # The command line from the same virtualenv reads them.
    listing = _run(str(Path(venv_python).parent / "gunicorn-pyinstrument"), "list", "--dir", str(reports))
    assert "/installed/1" in listing
    # The page's assets are served from the installed package.
    served = _run(
        venv_python,
        "-c",
        "from gunicorn_pyinstrument.web.assets import ASSETS, asset_response; "
        "print(sorted(ASSETS)); print(len(asset_response(['vendor', 'uplot', 'uPlot.iife.min.js']).body))",
        cwd=app_dir,
        env=clean_env(away),
    )
    assert "'flame.js'" in served and "'vendor/uplot/uPlot.iife.min.js'" in served
    assert served.splitlines()[-1] == str(
        (REPO_ROOT / PACKAGE / "web/static/vendor/uplot/uPlot.iife.min.js").stat().st_size
    )
