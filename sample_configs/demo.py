"""`make demo`: serve the sample Flask app under gunicorn with profiling on, send it a few
requests, stop it, and show the reports it wrote.

Run from anywhere with the project's virtualenv: ``.venv/bin/python sample_configs/demo.py``.
Reports go to ``demo-reports/`` at the repository root, emptied first.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import gunicorn

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "demo-reports"
FORMATS = "session,html,speedscope,text"
APP = "sample_configs.flask_app:app"
WORKERS = 2

#: (path and query, how many times). The query string is sent but never stored in a report.
REQUESTS = [
    ("/", 2),
    ("/compute", 2),
    ("/compute?n=80000", 1),
    ("/slow", 2),
    ("/error", 1),
    ("/stream", 2),
]

START_SECONDS = 30.0  # for gunicorn to listen
REQUEST_SECONDS = 30.0  # per request
STOP_SECONDS = 60.0  # for gunicorn to exit after SIGTERM (workers flush, the helper drains)
SPOOL_SECONDS = 30.0  # for a helper that outlives the master to finish


def say(text: str = "") -> None:
    print(text, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def shown(path: Path) -> str:
    """A path as the user would type it from where they ran the demo."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("..") else str(path)


class Server:
    """gunicorn in its own process group, its output collected in memory."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("GUNICORN_")}
        env.update(
            GUNICORN_PYINSTRUMENT="1",
            GUNICORN_PYINSTRUMENT_DIR=str(REPORTS),
            GUNICORN_PYINSTRUMENT_FORMATS=FORMATS,
            PYTHONUNBUFFERED="1",
        )
        self.command = [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "gunicorn_pyinstrument/config.py",
            # The demo needs no control socket; gunicorn has one, and the flag, only from 25.1.
            *(["--no-control-socket"] if gunicorn.version_info >= (25, 1) else []),
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(WORKERS),
            APP,
        ]
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            start_new_session=True,  # a Ctrl-C on the demo reaches only the demo, which stops gunicorn
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start-up with status {self.process.returncode}")
            # Connect without sending anything: an empty connection is not logged as a bad request.
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not listen on port {self.port} within {timeout:g}s")

    def stop(self, timeout: float) -> int | None:
        """SIGTERM to the master, then wait: its on_exit hook waits for the helper process to finish."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                say(f"gunicorn did not stop within {timeout:g}s; killing it")
        self.kill()
        return self.process.returncode

    def kill(self) -> None:
        """Last resort, always safe to call: SIGKILL to the process group this demo started."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        self._reader.join(1)


def fetch(url: str) -> tuple[int | str, float]:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=REQUEST_SECONDS) as response:
            response.read()
            status: int | str = response.status
    except urllib.error.HTTPError as exc:  # /error answers 500 on purpose
        exc.read()
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        status = f"failed ({exc})"
    return status, time.perf_counter() - start


def send_requests(server: Server) -> None:
    for target, times in REQUESTS:
        for _ in range(times):
            if server.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with status {server.process.returncode}")
            status, seconds = fetch(f"http://127.0.0.1:{server.port}{target}")
            say(f"  GET {target:<18} -> {status}  ({seconds * 1000:.0f} ms)")


def wait_for_spool(timeout: float) -> list[str]:
    """Jobs the helper has not finished yet (normally none once gunicorn has exited)."""
    spool = REPORTS / ".spool"
    deadline = time.monotonic() + timeout
    while True:
        jobs = sorted(p.name for p in spool.glob("*.job.json")) if spool.is_dir() else []
        if not jobs or time.monotonic() >= deadline:
            return jobs
        time.sleep(0.2)


def load_reports() -> list[dict[str, Any]]:
    """The metadata records: a .meta.json is written last, so each one is a complete report."""
    reports = []
    for path in REPORTS.glob("*.meta.json"):
        with contextlib.suppress(OSError, ValueError):
            reports.append(json.loads(path.read_text(encoding="utf-8")))
    return sorted(reports, key=lambda r: r.get("start", 0))


def print_table(reports: list[dict[str, Any]]) -> None:
    rows = [("time (UTC)", "method", "path", "status", "ms", "samples", "files")]
    for r in reports:
        rows.append(
            (
                str(r.get("time", ""))[11:23],
                str(r.get("method", "")),
                str(r.get("path", "")),
                str(r.get("status", "")),
                f"{float(r.get('duration', 0)) * 1000:.0f}",
                str(r.get("samples", "")),
                " ".join(name.removeprefix(r["name"]) for name in r.get("files", {}).values()),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {3, 4, 5}
    for n, row in enumerate(rows):
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        say("  " + "  ".join(cells).rstrip())
        if n == 0:
            say("  " + "  ".join("-" * w for w in widths))


def print_how_to_open(example: dict[str, Any]) -> None:
    files = example.get("files", {})
    base = f"R={shown(REPORTS / example['name'])}"
    pyinstrument = shown(Path(sys.executable).parent / "pyinstrument")
    python = shown(Path(sys.executable))
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    lines = []
    if "html" in files:
        lines.append((f"{opener} $R.html", "interactive call tree and timeline, in a browser"))
    if "session" in files:
        serve = f"gunicorn-pyinstrument --dir {shown(REPORTS)} serve"
        lines.append((serve, f"then http://127.0.0.1:8000/flame/{example['name']}: its flame graph"))
    if "session" in files:
        lines.append((f"{pyinstrument} --load $R.pyisession", "pyinstrument's CLI; -r html -o FILE converts"))
        lines.append((f"{pyinstrument} --load $R.pyisession -r pstats -o $R.pstats", "to pstats, then:"))
        lines.append((f"{python} -m pstats $R.pstats", "cProfile's browser"))
    if "text" in files:
        lines.append(("less $R.txt", "the text above"))
    width = max(len(command) for command, _ in lines)
    say("How to open them, for example the slowest request's:")
    say(f"  {base}")
    for command, note in lines:
        say(f"  {command.ljust(width)}  # {note}" if not command.startswith("#") else f"  {command}")
    say("(add pstats to GUNICORN_PYINSTRUMENT_FORMATS to get a .pstats with every report)")


def show_cli(example: dict[str, Any]) -> None:
    """Run the command line on the reports (list, top), and print more commands to try."""
    script = Path(sys.executable).parent / "gunicorn-pyinstrument"
    if script.exists():
        command, typed = [str(script)], shown(script)
    else:  # installed without its console script: the module does the same
        command, typed = (
            [sys.executable, "-m", "gunicorn_pyinstrument"],
            f"{shown(Path(sys.executable))} -m gunicorn_pyinstrument",
        )
    base = f"{typed} --dir {shown(REPORTS)}"
    say("The command line finds, aggregates and compares reports (docs/cli.md):")
    for args in (["list", "--limit", "5"], ["top"]):
        say(f"  $ {base} {' '.join(args)}")
        try:
            result = subprocess.run(
                [*command, "--dir", str(REPORTS), *args], capture_output=True, text=True, timeout=60
            )
            output = (result.stdout + result.stderr).splitlines()
        except (OSError, subprocess.TimeoutExpired) as exc:
            output = [f"could not run it: {exc}"]
        for line in output:
            say(f"    {line}")
    say("More to try:")
    tries = [
        ("list --status 5xx", "the failed requests"),
        ("top --sort p95", "endpoints by their 95th percentile"),
        (f"render {example['name']} -f text", "one report as text, from its session"),
        ("merge --path '^/compute' -o compute.html", "every /compute request in one call tree"),
        ("diff path=^/compute path=^/slow", "function by function, per report"),
        ("prune --max-reports 5 --dry-run", "what retention would remove"),
    ]
    for args, note in tries:
        say(f"  # {note}")
        say(f"  {base} {args}")


def main() -> int:
    if REPORTS.exists():
        shutil.rmtree(REPORTS)
    port = free_port()
    say(f"Starting gunicorn on 127.0.0.1:{port} with profiling on:")
    settings = {"": "1", "_DIR": shown(REPORTS), "_FORMATS": FORMATS}
    say("  " + " ".join(f"GUNICORN_PYINSTRUMENT{key}={value}" for key, value in settings.items()))
    server: Server | None = None
    ok = interrupted = False
    try:
        server = Server(port)
        say("  " + " ".join(["python", *server.command[1:]]))
        server.wait_listening(START_SECONDS)
        say()
        say("Sending requests:")
        send_requests(server)
        say()
        say("Stopping gunicorn (SIGTERM); workers flush their reports, the helper process finishes its jobs.")
        status = server.stop(STOP_SECONDS)
        say(f"  gunicorn exited with status {status}")
        ok = True
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: stopping gunicorn")
    except RuntimeError as exc:
        say(f"error: {exc}")
    finally:
        if server is not None:
            server.stop(STOP_SECONDS)  # returns at once when it has already exited; kills if it must
    if interrupted:
        return 130
    pending = wait_for_spool(SPOOL_SECONDS) if ok else []
    reports = load_reports()
    if server is not None:
        ours = [line for line in server.lines if "gunicorn-pyinstrument" in line]
        everything = not ok or not reports
        if ours or everything:
            say()
            say("gunicorn's log:" if everything else "gunicorn's log (the plugin's lines):")
            for line in server.lines[-60:] if everything else ours:
                say(f"  {line}")
    say()
    if not reports:
        say(f"No report was written in {shown(REPORTS)}.")
        return 1
    if not ok:
        return 1
    say(f"{len(reports)} reports in {shown(REPORTS)}/ (one per request; the query string is not stored):")
    print_table(reports)
    if pending:
        say(f"  {len(pending)} not rendered yet; finish them with:")
        say(f"  {shown(Path(sys.executable))} -m gunicorn_pyinstrument.helper --once {shown(REPORTS)}")

    slowest = max(reports, key=lambda r: float(r.get("duration", 0)))
    say()
    say(f"Report of the slowest request, {slowest['method']} {slowest['path']} ({slowest['name']}.txt):")
    text_name = slowest.get("files", {}).get("text")
    if text_name:
        lines = (REPORTS / text_name).read_text(encoding="utf-8").splitlines()
        for line in lines[:60]:
            say(f"  {line}")
        if len(lines) > 60:
            say(f"  ... ({len(lines) - 60} more lines)")
    say()
    print_how_to_open(slowest)
    say()
    show_cli(slowest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
