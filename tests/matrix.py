"""`make test-matrix`: the whole suite on each supported Python, gunicorn and pyinstrument.

Each combination below gets a virtualenv of its own (kept under ``--work`` between runs, so a
second run installs little), with the project and its test extra installed editable and gunicorn
and pyinstrument pinned, and runs pytest there. Combinations run one after the other: each is a
whole run of the suite, and two at once would make the timing tests of both flaky. The newest
combination runs the browser test; the others deselect it.

Pythons come from pyenv (``$PYENV_ROOT/versions``, newest patch release first), else from ``PATH``.
A Python that is not installed skips its combinations with one line. ``latest`` is the newest
release on the package index, even past the range ``pyproject.toml`` declares, so that a new major
release shows up here first (pip then warns that it is outside the range).

Prints one line per combination as it finishes, then all of them again; exits 1 if any failed.
Standard library only: it runs with any Python 3.10 or newer, outside the project's virtualenv.

    python tests/matrix.py                      # everything (about an hour on 2 cores)
    python tests/matrix.py --only oldest,newest # the two corners
    python tests/matrix.py --only oldest -- tests/unit   # pytest arguments after --
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
WORK = Path("/tmp/gunicorn-pyinstrument-matrix")
BROWSER_TEST = "tests/integration/test_web.py::test_in_a_browser"
#: A whole run takes 5 to 10 minutes here; past this something hangs.
RUN_SECONDS = 45 * 60
INSTALL_SECONDS = 15 * 60
LATEST = "latest"


@dataclass(frozen=True)
class Combination:
    name: str
    pythons: tuple[str, ...]  # the first one installed is used
    gunicorn: str  # a version specifier (``==24.*``) or LATEST
    pyinstrument: str
    browser: bool = False


#: Both corners, and each gunicorn major release in the range on one Python; every Python at least once.
COMBINATIONS = [
    Combination("oldest", ("3.10",), "==23.0.0", "==5.0.0"),
    Combination("gunicorn-24", ("3.11",), "==24.*", LATEST),
    Combination("gunicorn-25", ("3.12",), "==25.*", "==5.0.*"),
    Combination("gunicorn-26", ("3.11",), "==26.*", "==5.0.*"),
    Combination("newest", ("3.14", "3.13"), LATEST, LATEST, browser=True),
]
PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")


def find_python(version: str) -> str | None:
    """The newest installed patch release of Python ``version`` (``3.12``), or None."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = []
    for path in glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")):
        # Final releases only: 3.14.0, not 3.14.0rc1 nor a free-threaded 3.14.0t.
        release = re.fullmatch(rf"{re.escape(version)}\.(\d+)", Path(path).parents[1].name)
        if release:
            found.append((int(release.group(1)), path))
    if found:
        return max(found)[1]
    on_path = shutil.which(f"python{version}")
    # A pyenv shim answers for every version pyenv knows of, installed or not: ask it.
    if on_path and subprocess.run([on_path, "-c", ""], capture_output=True).returncode == 0:
        return on_path
    return None


def run(cmd: list[str], log: Path, timeout: float, env: dict[str, str] | None = None) -> int:
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        try:
            return subprocess.run(
                cmd, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout
            ).returncode
        except subprocess.TimeoutExpired:
            out.write(f"\n(timed out after {timeout:g}s)\n")
            return -1


def clean_environment(venv: Path) -> dict[str, str]:
    """This process's environment for the venv: no other virtualenv, path or plugin setting."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "GUNICORN_CMD_ARGS")
        and not k.startswith("GUNICORN_PYINSTRUMENT")
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


def install(python: str, combo: Combination, venv: Path, log: Path) -> bool:
    env = clean_environment(venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
    if not (venv / "bin" / "python").exists() and run([python, "-m", "venv", str(venv)], log, 300):
        return False
    pins = [
        f"{name}{spec}" for name, spec in (("gunicorn", combo.gunicorn), ("pyinstrument", combo.pyinstrument))
    ]
    steps = [
        [*pip, "install", "--upgrade", "pip"],
        # The pins in the same command, so that pip resolves the rest (the apps, the workers) with them.
        [*pip, "install", "-e", ".[test]", *(p for p in pins if not p.endswith(LATEST))],
    ]
    latest = [p.removesuffix(LATEST) for p in pins if p.endswith(LATEST)]
    if latest:
        steps.append([*pip, "install", "--upgrade", *latest])
    return all(run(step, log, INSTALL_SECONDS, env) == 0 for step in steps)


def installed_versions(venv: Path) -> str:
    code = (
        "import platform, importlib.metadata as m; "
        'print(f\'python {platform.python_version():<7}  gunicorn {m.version("gunicorn"):<7}  '
        'pyinstrument {m.version("pyinstrument"):<6}\')'
    )
    result = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True)
    return result.stdout.strip() or "(versions unknown)"


def pytest_outcome(log: Path) -> str:
    """pytest's closing line (``812 passed, 40 skipped in 512.3s``), without its decoration."""
    lines = log.read_text(errors="replace").splitlines()
    for line in reversed(lines):
        if re.search(r"\b(passed|failed|error|errors|skipped|no tests ran)\b.* in [\d.]+s", line):
            return re.sub(r"\s*\(\d+:\d\d:\d\d\)\s*$", "", line.strip("= "))
    return "no summary (see the log)"


def run_combination(combo: Combination, work: Path, pytest_args: list[str]) -> tuple[bool, str]:
    """Install and test one combination; (passed, its summary line)."""
    label = f"{combo.name:<12}"
    python = next((p for p in map(find_python, combo.pythons) if p), None)
    if python is None:
        return True, f"SKIP {label} python {' or '.join(combo.pythons)} not installed"
    version = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
    ).stdout.strip()
    venv = work / "venvs" / f"{combo.name}-py{version}"
    log = work / f"{combo.name}.log"
    log.write_text(f"{combo}\n")
    started = time.monotonic()
    if not install(python, combo, venv, log):
        return False, f"FAIL {label} install failed (log: {log})"
    versions = installed_versions(venv)
    args = list(pytest_args)
    if not combo.browser:
        args += ["--deselect", BROWSER_TEST]
    status = run(
        [str(venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        log,
        RUN_SECONDS,
        clean_environment(venv),
    )
    minutes = (time.monotonic() - started) / 60
    word = "PASS" if status == 0 else "FAIL"
    browser = "  +browser" if combo.browser else ""
    return (
        status == 0,
        f"{word} {label} {versions}  {pytest_outcome(log)}{browser}  ({minutes:.0f} min, log: {log})",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--only", help="comma list of combinations: " + ", ".join(c.name for c in COMBINATIONS)
    )
    parser.add_argument("--work", type=Path, default=WORK, help=f"virtualenvs and logs (default {WORK})")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    chosen = COMBINATIONS
    if args.only:
        names = args.only.split(",")
        unknown = set(names) - {c.name for c in COMBINATIONS}
        if unknown:
            parser.error(f"unknown combination(s): {', '.join(sorted(unknown))}")
        chosen = [c for name in dict.fromkeys(names) for c in COMBINATIONS if c.name == name]  # in that order
    args.work.mkdir(parents=True, exist_ok=True)
    # Started in the background (``make test-matrix &``), this process has Ctrl-C ignored, and every
    # process of the suite would inherit that: the test that stops ``serve`` with Ctrl-C would fail.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    lines = [f"SKIP {'python ' + v:<12} not installed" for v in PYTHONS if find_python(v) is None]
    for line in lines:
        print(line, flush=True)
    ok = True
    for combo in chosen:
        passed, line = run_combination(combo, args.work, args.pytest_args)
        ok = ok and passed
        lines.append(line)
        print(line, flush=True)
    summary = "\n".join(lines)
    (args.work / "summary.txt").write_text(summary + "\n")
    print(f"\n{summary}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
