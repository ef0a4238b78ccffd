"""ProfilerMiddleware under real servers without gunicorn's hooks: Flask under waitress and under the
Werkzeug development server, FastAPI under uvicorn on its own with two workers, Django's runserver
with the Django middleware; Flask's middleware under gunicorn without the hooks (``--preload``: made
in the master, used in forked workers) and with them (one report per request). Each server gets
concurrent requests to routes that burn CPU in functions of their own, and each report must hold
all of its own work and none of the other's. A bad setting stops each server at start-up with the
plugin's one line."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from support import (
    CONFIG_FILE,
    REPO_ROOT,
    by_path,
    check_report_directory,
    clean_env,
    get,
    get_many,
    load_session,
    metadata_records,
    profiling_env,
    renderer_processes,
    report_functions,
    wait_for_metadata,
)

from .worker_checks import sampled_seconds, seconds_in

FLASK = "tests.apps.flask_middleware_app:app"
FASTAPI = "tests.apps.fastapi_middleware_app:app"
DJANGO_SETTINGS = "tests.apps.django_middleware_app"

BURN = 0.1
#: Three requests each to /alpha and /beta, all at once: BURN seconds of CPU in alpha_work or beta_work.
CONCURRENT = [f"/alpha?s={BURN}", f"/beta?s={BURN}"] * 3
BAD_RATE = {"SAMPLE_RATE": "2"}
BAD_LINE = "GUNICORN_PYINSTRUMENT_SAMPLE_RATE='2' is not valid (out of range): expected a number from 0 to 1"

#: How each server is started, on port 0 (the kernel picks a free one), and how it says which.
PYTHON = sys.executable
# waitress's runner, with its exit status (``python -m waitress`` exits 0 when the app fails to import).
WAITRESS = [
    PYTHON,
    "-c",
    "import sys; from waitress.runner import run; sys.exit(run())",
    "--listen=127.0.0.1:0",
    "--threads=4",
    FLASK,
]
WERKZEUG = [PYTHON, "-m", "flask", "--app", FLASK.replace(":app", ""), "run", "--port", "0"]
WORKERS = 2
UVICORN = [PYTHON, "-m", "uvicorn", "--port", "0", "--workers", str(WORKERS), FASTAPI]
UVICORN_READY = "Application startup complete."
UVICORN_ONE = [PYTHON, "-m", "uvicorn", "--port", "0", FASTAPI]
RUNSERVER = [
    PYTHON,
    "-m",
    "django",
    "runserver",
    "127.0.0.1:0",
    "--noreload",
    f"--settings={DJANGO_SETTINGS}",
]
LISTENING = re.compile(r"(?:Serving on|Running on|running on|server at) http://127\.0\.0\.1:(\d+)")


class Server:
    """A server started on port 0, in a session of its own, its output in a log file."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], log_path: Path, ready: str = "") -> None:
        self.log_path = log_path
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                list(args),
                cwd=REPO_ROOT,
                env=clean_env(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.port = self._wait_port(ready)

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_port(self, ready: str, timeout: float = 30.0) -> int:
        """The port it says it listens on, once it says so, and says ``ready`` as many times as
        it has workers (uvicorn's workers listen only once they have started)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log
            found = LISTENING.search(log)
            if found and (not ready or log.count(ready) >= WORKERS):
                return int(found.group(1))
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.kill()
        raise AssertionError(f"the server did not start:\n{self.log}")

    def stop(self, timeout: float = 20.0) -> int:
        """Ctrl-C, as a user stops it (every one of these servers then exits cleanly)."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the server did not stop within {timeout:g}s:\n{self.log}") from None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """``serve(args, env)`` starts a server; every one is killed at teardown (a helper process it
    started finishes its jobs and exits by itself), and its log shown if the test failed."""
    servers: list[Server] = []

    def start(args: Sequence[str], env: Mapping[str, str], ready: str = "") -> Server:
        server = Server(args, env, tmp_path / f"server-{len(servers) + 1}.log", ready)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.kill()
        print(f"--- {server.log_path.name}\n{server.log}")  # shown when the test failed


def wait_helpers_gone(directory: Path, timeout: float = 60.0) -> None:
    """The helper a middleware started exits once its process has: rendering finished first."""
    deadline = time.monotonic() + timeout
    while renderer_processes(directory) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert renderer_processes(directory) == []


def assert_isolated(report_dir: Path, records: Sequence[Mapping[str, Any]], worker_class: str) -> None:
    """The reports of the CONCURRENT requests: they overlapped in time, and each holds all of its own
    request's work and none of the other's."""
    assert sorted(r["path"] for r in records) == ["/alpha"] * 3 + ["/beta"] * 3
    spans = sorted((r["start"], r["start"] + r["duration"]) for r in records)
    assert any(b_start < a_end for (_, a_end), (b_start, _) in itertools.pairwise(spans)), spans
    for record in records:
        assert (record["method"], record["status"], record["kind"]) == ("GET", 200, "request")
        assert record["worker"]["class"] == worker_class
        session = load_session(report_dir / record["files"]["session"])
        own, other = (
            ("alpha_work", "beta_work") if record["path"] == "/alpha" else ("beta_work", "alpha_work")
        )
        assert seconds_in(session, own) >= 0.75 * BURN, record["name"]
        assert seconds_in(session, other) == 0, record["name"]
        assert sampled_seconds(session) >= 0.8 * record["duration"], record["name"]


def send_concurrent(server: Any, answers: tuple[bytes, bytes]) -> None:
    replies = get_many([server.url + p for p in CONCURRENT], concurrency=6)
    assert sorted(replies) == [(200, answers[0])] * 3 + [(200, answers[1])] * 3


def check_flask(server: Server, report_dir: Path) -> list[dict[str, Any]]:
    """Concurrent requests and a streamed body through Flask's middleware; the reports, HTML rendered
    by the helper the process started, in the catalog; the server stopped."""
    send_concurrent(server, (b"alpha", b"beta"))
    status, body = get(server.url + "/stream?n=10")
    assert (status, body.count(b"chunk")) == (200, 10)
    records = wait_for_metadata(report_dir, 7, timeout=60)
    assert len(renderer_processes(report_dir)) == 1
    assert server.stop() == 0
    wait_helpers_gone(report_dir)
    assert len(records) == 7
    assert_isolated(report_dir, by_path(records, "/alpha") + by_path(records, "/beta"), "wsgi-middleware")
    [stream] = by_path(records, "/stream")
    assert stream["duration"] >= 0.09  # to the end of the body: 10 chunks of 10 ms
    assert "stream_chunks" in report_functions(report_dir, stream)
    assert {r["pid"] for r in records} == {server.proc.pid}
    assert all(set(r["files"]) == {"session", "html"} for r in records)
    assert len(check_report_directory(report_dir)) == 7
    return records


def test_flask_under_waitress(serve, report_dir):
    check_flask(serve(WAITRESS, profiling_env(report_dir)), report_dir)


def test_flask_under_the_werkzeug_development_server(serve, report_dir):
    check_flask(serve(WERKZEUG, profiling_env(report_dir)), report_dir)


def test_fastapi_under_uvicorn_with_two_workers(serve, report_dir):
    server = serve(UVICORN, profiling_env(report_dir), ready=UVICORN_READY)
    send_concurrent(server, (b"alpha", b"beta"))
    assert get(server.url + "/lifespan") == (200, b"started")  # lifespan passes through
    records = wait_for_metadata(report_dir, 7, timeout=60)
    # Each worker looks for the helper on its first request: one serves the directory.
    deadline = time.monotonic() + 5
    while len(renderer_processes(report_dir)) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(renderer_processes(report_dir)) == 1
    assert server.stop() == 0
    wait_helpers_gone(report_dir)
    assert len(records) == 7
    # Served by the workers, never by uvicorn's own process; the state of each is its own.
    assert server.proc.pid not in {r["pid"] for r in records}
    assert len({(r["pid"], r["worker"]["instance"]) for r in records}) == len({r["pid"] for r in records})
    assert_isolated(report_dir, by_path(records, "/alpha") + by_path(records, "/beta"), "asgi-middleware")


def test_django_runserver_with_the_middleware(serve, report_dir):
    server = serve(RUNSERVER, profiling_env(report_dir, FORMATS="session"))
    send_concurrent(server, (b"alpha", b"beta"))
    assert get(server.url + f"/async?s={BURN}") == (200, b"async")
    status, body = get(server.url + "/stream?n=10")
    assert (status, body.count(b"chunk")) == (200, 10)
    records = wait_for_metadata(report_dir, 8)
    assert server.stop() == 0
    assert len(records) == 8
    assert_isolated(report_dir, by_path(records, "/alpha") + by_path(records, "/beta"), "django-middleware")
    # An async view runs on an event loop in another thread under WSGI: its work is in the report.
    [async_record] = by_path(records, "/async")
    assert (
        seconds_in(load_session(report_dir / async_record["files"]["session"]), "async_work") >= 0.75 * BURN
    )
    [stream] = by_path(records, "/stream")
    assert stream["duration"] >= 0.09
    assert "stream_chunks" in report_functions(report_dir, stream)
    assert renderer_processes(report_dir) == []  # only sessions: no helper needed


def test_gunicorn_without_the_hooks_forked_after_the_app_was_wrapped(gunicorn, report_dir):
    """``--preload``: the middleware is made in gunicorn's master; each forked worker makes its own
    state on its first request."""
    env = profiling_env(report_dir, FORMATS="session")
    server = gunicorn("--preload", "-w", "2", FLASK, env=env)
    send_concurrent(server, (b"alpha", b"beta"))
    records = wait_for_metadata(report_dir, 6)
    assert server.stop() == 0
    assert len(records) == 6
    pids = {r["pid"] for r in records}
    assert pids <= set(server.worker_pids())
    assert len({(r["pid"], r["worker"]["instance"]) for r in records}) == len(pids)
    for pid in pids:
        assert_isolated_subset(report_dir, [r for r in records if r["pid"] == pid])


def assert_isolated_subset(report_dir: Path, records: Sequence[Mapping[str, Any]]) -> None:
    for record in records:
        session = load_session(report_dir / record["files"]["session"])
        own, other = (
            ("alpha_work", "beta_work") if record["path"] == "/alpha" else ("beta_work", "alpha_work")
        )
        assert record["worker"]["class"] == "wsgi-middleware"
        assert seconds_in(session, own) >= 0.75 * BURN and seconds_in(session, other) == 0, record["name"]


def test_gunicorn_with_the_hooks_profiles_each_request_once(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session")
    server = gunicorn("-c", CONFIG_FILE, "-k", "gthread", "--threads", "4", "-w", "1", FLASK, env=env)
    send_concurrent(server, (b"alpha", b"beta"))
    assert server.stop() == 0
    records = metadata_records(report_dir)
    assert len(records) == 6  # one report per request, by the hooks
    assert_isolated(report_dir, records, "ThreadWorker")


@pytest.mark.parametrize(
    "args", [WAITRESS, WERKZEUG, UVICORN_ONE, RUNSERVER], ids=["waitress", "werkzeug", "uvicorn", "runserver"]
)
def test_a_bad_setting_stops_the_server_at_start_up_with_one_line(tmp_path, args):
    env = clean_env(profiling_env(tmp_path / "reports", **BAD_RATE))
    done = subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    # Each server says it its own way: as an exception's last line, or as "Error: ..." (waitress).
    assert any(line.endswith(f"Error: {BAD_LINE}") for line in done.stderr.splitlines()), done.stderr
