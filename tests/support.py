"""Helpers for the tests that run real gunicorn processes: start and stop servers, HTTP with the
standard library only, and reading the reports back.

Fixtures built on these live in ``conftest.py``; test modules import the plain helpers from here.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import gunicorn as gunicorn_package
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "GUNICORN_PYINSTRUMENT"

#: The plugin's config module, as a file (from a checkout) and as a module.
CONFIG_FILE = str(REPO_ROOT / "gunicorn_pyinstrument" / "config.py")
CONFIG_MODULE = "python:gunicorn_pyinstrument.config"

FLASK_APP = "tests.apps.flask_app:app"
WSGI_APP = "tests.apps.wsgi_app:app"
DJANGO_APP = "tests.apps.django_app:application"
PRELOAD_APP = "tests.apps.preload_probe:app"

METADATA_SUFFIX = ".meta.json"
SPOOL = ".spool"

READY_SECONDS = 15.0
STOP_SECONDS = 30.0
RENDERER_SECONDS = 120.0
HTTP_SECONDS = 30.0


# --- what the running gunicorn has ---

#: The first gunicorn version with each feature some tests need. The suite runs on every gunicorn in
#: the declared range (``make test-matrix``): it never passes a flag the running gunicorn lacks, and a
#: test that needs a newer one is skipped, saying why.
CONTROL_SOCKET = (25, 1)  # and its --no-control-socket flag
#: gunicorn has an asgi worker (-k asgi) from 24.0, and the suite relies on it from 26.1. Before, the
#: worker itself, plugin or not, answers nothing when the app raises (24.x), fails Django apps (24.x
#: never answers, 25.3 answers 500) or ignores SIGTERM until the graceful timeout (25.x, 26.0).
ASGI_WORKER_TESTED = (26, 1)
ASGI_WORKER_LACKS = "an asgi worker that handles app errors, Django and SIGTERM, plugin or not"
#: Before 24.0 a gthread worker that recycles (max-requests, HUP) resets the connections queued in it,
#: with or without the plugin, so a test sending while workers recycle sees connection errors.
GTHREAD_RECYCLING = (24, 0)

GUNICORN_VERSION: tuple[int, ...] = tuple(gunicorn_package.version_info)


def gunicorn_has(since: tuple[int, ...]) -> bool:
    return since <= GUNICORN_VERSION


def _missing(since: tuple[int, ...], what: str) -> str:
    added = ".".join(map(str, since))
    return f"gunicorn {gunicorn_package.__version__} lacks {what} (from {added})"


def needs_gunicorn(since: tuple[int, ...], what: str) -> pytest.MarkDecorator:
    """A mark: skip the test on a gunicorn older than ``since``, naming ``what`` it lacks."""
    return pytest.mark.skipif(not gunicorn_has(since), reason=_missing(since, what))


def skip_unless_gunicorn_has(since: tuple[int, ...], what: str) -> None:
    """The same, inside a test or fixture (for one parametrization, say)."""
    if not gunicorn_has(since):
        pytest.skip(_missing(since, what))


_CLEAN_RECYCLING = "gthread recycling that keeps its queued connections"
#: A mark for the tests that recycle gthread workers while requests are queued.
needs_clean_gthread_recycling = needs_gunicorn(GTHREAD_RECYCLING, _CLEAN_RECYCLING)


def skip_unless_gthread_recycles_cleanly() -> None:
    skip_unless_gunicorn_has(GTHREAD_RECYCLING, _CLEAN_RECYCLING)


def worker_class_in(args: Sequence[str]) -> str | None:
    """The worker class given in gunicorn's arguments, in any of its spellings."""
    for i, arg in enumerate(args):
        if arg in ("-k", "--worker-class"):
            return args[i + 1] if i + 1 < len(args) else None
        if arg.startswith("--worker-class="):
            return arg.partition("=")[2]
        if arg.startswith("-k"):
            return arg[2:]
    return None


def skip_unless_worker_class_exists(args: Sequence[str]) -> None:
    """Skip on a gunicorn too old for the worker class in ``args`` (``-k asgi`` before 26.1)."""
    if worker_class_in(args) == "asgi":
        skip_unless_gunicorn_has(ASGI_WORKER_TESTED, ASGI_WORKER_LACKS)


# --- environment ---


def clean_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any plugin or gunicorn setting, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX) and k != "GUNICORN_CMD_ARGS"}
    base.update(env or {})
    return base


def profiling_env(directory: os.PathLike[str] | str, **settings: str) -> dict[str, str]:
    """``GUNICORN_PYINSTRUMENT=1`` writing into ``directory``; keyword names are the variable
    suffixes: ``profiling_env(d, SAMPLE_RATE="0.5")``."""
    env = {ENV_PREFIX: "1", f"{ENV_PREFIX}_DIR": str(directory)}
    env.update({f"{ENV_PREFIX}_{name}": value for name, value in settings.items()})
    return env


# --- gunicorn processes ---


def _listening_socket() -> socket.socket:
    """A socket already bound and listening on a free port: passed to gunicorn as ``fd://N``,
    so no other process can take the port between choosing it and gunicorn binding it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def _workers_in(args: Sequence[str]) -> int:
    for i, arg in enumerate(args):
        if arg in ("-w", "--workers") and i + 1 < len(args):
            return int(args[i + 1])
        if arg.startswith("--workers="):
            return int(arg.split("=", 1)[1])
    return 1


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a process group this test started (start_new_session=True)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _own_signal_handlers(pid: int) -> bool:
    """Has this worker process replaced the master's signal handlers with its own? Every gunicorn
    worker class resets SIGHUP, which the master catches, to the default (read from /proc)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
    except (OSError, StopIteration, ValueError):
        return False  # gone (a worker that failed to boot), or unreadable
    return not caught & (1 << (signal.SIGHUP - 1))


def renderer_processes(
    directory: os.PathLike[str] | str | None = None, parent: int | None = None
) -> list[int]:
    """Pids of running renderer processes, for ``directory`` and/or started by the master ``parent``
    (read from /proc; nothing is signalled)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"gunicorn_pyinstrument.helper" not in argv:
            continue
        if directory is not None and os.fsencode(str(directory)) not in argv:
            continue
        if parent is not None and str(parent).encode() not in argv:
            continue
        pids.append(int(entry))
    return pids


class Gunicorn:
    """One running gunicorn master (started by :class:`GunicornFactory`)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.proc = proc
        self.port = port
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", self.log)]

    def booted_workers(self) -> list[int]:
        """Workers that are alive and have set up their own signal handlers."""
        return [pid for pid in self.worker_pids() if _own_signal_handlers(pid)]

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, workers: int, timeout: float = READY_SECONDS) -> None:
        """Until ``workers`` workers have set up their own signal handlers.

        The listening socket exists before gunicorn starts, so requests sent earlier would only
        wait in the backlog; but a worker signalled before it has replaced the master's handlers
        it inherited loses the signal (gunicorn then waits its graceful timeout, 30 s). So tests
        must not stop a server before this."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise AssertionError(
                    f"gunicorn exited with status {self.proc.returncode} during start-up:\n{self.log}"
                )
            if len(self.booted_workers()) >= workers:
                return
            time.sleep(0.02)
        self.kill()
        raise AssertionError(f"gunicorn did not boot {workers} worker(s) within {timeout:g}s:\n{self.log}")

    def stop(
        self, sig: int = signal.SIGTERM, timeout: float = STOP_SECONDS, wait_renderer: bool = True
    ) -> int:
        """Signal the master (by pid) and wait for it to exit; its exit status.
        SIGKILLs the process group if it takes longer than ``timeout`` (and fails).

        With ``wait_renderer``, also wait for the master's renderer process to finish: the master
        waits for it only 10 s, and at nice 19 on a busy machine it can take longer."""
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"gunicorn did not exit within {timeout:g}s of signal {sig}:\n{self.log}"
                ) from None
        # Workers orphaned by a crashed master would still be in the group.
        _kill_group(self.proc.pid)
        if wait_renderer:
            self.wait_renderer()
        return self.proc.returncode

    def wait_renderer(self, timeout: float = RENDERER_SECONDS) -> None:
        """Until the renderer this master started has exited (it does once the spool is empty)."""
        deadline = time.monotonic() + timeout
        while renderer_processes(parent=self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self) -> None:
        _kill_group(self.proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)


class GunicornFactory:
    """``gunicorn(*args, env=...)`` starts ``python -m gunicorn`` from the repository root, bound to
    127.0.0.1 on a free port, with no control socket, its output in a log file under ``log_dir``.
    Everything it started is stopped by :meth:`cleanup` (the fixture's teardown). A worker class the
    running gunicorn lacks skips the test."""

    def __init__(self, log_dir: Path, python: str = sys.executable) -> None:
        self.log_dir = log_dir
        self.python = python  # another virtualenv's, to run an installed wheel
        self.servers: list[Gunicorn] = []

    def _command(self, fd: int, args: Sequence[str]) -> list[str]:
        skip_unless_worker_class_exists(args)
        # Tests run many servers at once: no control socket each. Before 25.1 there is none, nor the flag.
        no_control = ["--no-control-socket"] if gunicorn_has(CONTROL_SOCKET) else []
        return [self.python, "-m", "gunicorn", "--bind", f"fd://{fd}", *no_control, *args]

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        workers: int | None = None,
        ready_timeout: float = READY_SECONDS,
        umask: int = -1,
        cwd: os.PathLike[str] | str = REPO_ROOT,
    ) -> Gunicorn:
        """Start a server and wait until its workers have booted. ``workers`` is how many to wait
        for (default: the ``-w`` in ``args``, else 1); ``umask``, if given, is gunicorn's umask;
        ``cwd`` is where it starts (the repository root by default, so ``tests.apps`` imports)."""
        sock = _listening_socket()
        port = sock.getsockname()[1]
        log_path = self.log_dir / f"gunicorn-{len(self.servers) + 1}.log"
        try:
            with open(log_path, "wb") as log:
                proc = subprocess.Popen(
                    self._command(sock.fileno(), args),
                    cwd=cwd,
                    env=clean_env(env),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    pass_fds=(sock.fileno(),),
                    start_new_session=True,
                    umask=umask,
                )
        finally:
            # Only gunicorn holds the socket now: if it dies, connections are refused, not left hanging.
            sock.close()
        server = Gunicorn(proc, port, log_path)
        self.servers.append(server)
        server.wait_ready(workers if workers is not None else _workers_in(args), ready_timeout)
        return server

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        timeout: float = 20.0,
        cwd: os.PathLike[str] | str = REPO_ROOT,
    ) -> subprocess.CompletedProcess[str]:
        """Run gunicorn expecting it to exit by itself (a start-up failure); fails after ``timeout``."""
        sock = _listening_socket()
        try:
            proc = subprocess.Popen(
                self._command(sock.fileno(), args),
                cwd=cwd,
                env=clean_env(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                pass_fds=(sock.fileno(),),
                start_new_session=True,
            )
        finally:
            sock.close()
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            out, err = proc.communicate(timeout=10)
            raise AssertionError(f"gunicorn was still running after {timeout:g}s:\n{out}\n{err}") from None
        finally:
            _kill_group(proc.pid)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def cleanup(self) -> None:
        for server in self.servers:
            # On AssertionError it has been SIGKILLed; the test itself reports what went wrong.
            with contextlib.suppress(AssertionError):
                server.stop(timeout=10, wait_renderer=False)


# --- HTTP, standard library only ---


def _split(url: str) -> tuple[str, int, str]:
    """host, port and the request target exactly as written (no re-quoting)."""
    rest = url.removeprefix("http://")
    netloc, slash, target = rest.partition("/")
    host, _, port = netloc.partition(":")
    return host, int(port or 80), slash + target if slash else "/"


def request(
    method: str,
    url: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = HTTP_SECONDS,
) -> tuple[int, bytes]:
    """One request on a fresh connection; (status, body). Never raises on an HTTP error status."""
    host, port, target = _split(url)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def get(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = HTTP_SECONDS
) -> tuple[int, bytes]:
    """One GET on a fresh connection; (status, body)."""
    return request("GET", url, headers, timeout=timeout)


def get_many(
    urls: Iterable[str],
    headers: Mapping[str, str] | None = None,
    concurrency: int = 8,
    timeout: float = HTTP_SECONDS,
) -> list[tuple[int, bytes]]:
    """GET every URL from ``concurrency`` threads at once; results in the order of ``urls``."""
    urls = list(urls)
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(urls)))) as pool:
        return list(pool.map(lambda u: get(u, headers, timeout), urls))


def raw_exchange(port: int, request: bytes, timeout: float = HTTP_SECONDS) -> bytes:
    """Send bytes, read until the server closes the connection (or ``timeout``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


# --- reports ---


def metadata_records(directory: os.PathLike[str] | str) -> list[dict[str, Any]]:
    """Every finished report's metadata (``*.meta.json``), sorted by name (which is by time)."""
    root = Path(directory)
    if not root.is_dir():
        return []
    records = []
    for path in sorted(root.glob("*" + METADATA_SUFFIX)):
        with open(path) as f:
            records.append(json.load(f))
    return records


def wait_for_metadata(
    directory: os.PathLike[str] | str, count: int, timeout: float = 15.0
) -> list[dict[str, Any]]:
    """Poll until at least ``count`` reports are complete; the records (possibly fewer on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        records = metadata_records(directory)
        if len(records) >= count or time.monotonic() > deadline:
            return records
        time.sleep(0.05)


def report_files(directory: os.PathLike[str] | str) -> list[Path]:
    """Every file directly in the report directory (the spool directory excluded)."""
    root = Path(directory)
    return sorted(p for p in root.iterdir() if p.is_file()) if root.is_dir() else []


def spool_files(directory: os.PathLike[str] | str) -> list[Path]:
    spool = Path(directory) / SPOOL
    return sorted(spool.iterdir()) if spool.is_dir() else []


def load_session(path: os.PathLike[str] | str) -> Any:
    from pyinstrument.session import Session

    return Session.load(path)


def function_names(session: Any) -> set[str]:
    """Names of every function in any sampled stack (a frame is ``name\\x00file\\x00line...``)."""
    names: set[str] = set()
    for stack, _time in session.frame_records:
        for frame in stack:
            names.add(frame.split("\x00", 1)[0])
    return names


def report_functions(directory: os.PathLike[str] | str, record: Mapping[str, Any]) -> set[str]:
    """The function names in the session file of one report."""
    return function_names(load_session(Path(directory) / record["files"]["session"]))


def by_path(records: Iterable[Mapping[str, Any]], path: str) -> list[Mapping[str, Any]]:
    return [r for r in records if r["path"] == path]


# --- load and whole-directory checks (the reliability tests) ---


class Load:
    """A bounded concurrent request loop: ``threads`` clients send ``GET /<kind>/<id>?<query>``, each
    request on a fresh connection, with ids counted from ``first``, until :meth:`stop` or ``limit``
    requests. Each id's outcome is kept: ``(status, body)``, or the ``repr`` of the connection error.
    The app answers ``<kind> <id>\\n`` (``tests.apps.reliability_app``), so every body is checked."""

    def __init__(
        self,
        url: str,
        kind: str = "work",
        query: str = "s=0.02",
        threads: int = 4,
        limit: int = 2000,
        timeout: float = HTTP_SECONDS,
        first: int = 0,
    ) -> None:
        self.url = url
        self.kind = kind
        self.query = query
        self.limit = limit
        self.timeout = timeout
        self.outcomes: dict[int, tuple[int, bytes] | str] = {}
        self._ids = iter(range(first, first + limit))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(threads)]

    def path(self, ident: int) -> str:
        return f"/{self.kind}/{ident}"

    def expected(self, ident: int) -> tuple[int, bytes]:
        return 200, f"{self.kind} {ident}\n".encode()

    def _client(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                ident = next(self._ids, None)
            if ident is None:
                return
            outcome: tuple[int, bytes] | str
            try:
                outcome = get(f"{self.url}{self.path(ident)}?{self.query}", timeout=self.timeout)
            except (OSError, http.client.HTTPException) as exc:
                outcome = repr(exc)
            with self._lock:
                self.outcomes[ident] = outcome

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def done(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def wait(self, count: int, timeout: float = 30.0) -> None:
        """Until ``count`` requests have an outcome (all of them if fewer are left)."""
        deadline = time.monotonic() + timeout
        while self.done() < min(count, self.limit) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.done() >= min(count, self.limit), (
            f"{self.done()} of {count} requests done in {timeout:g}s"
        )

    def answered(self) -> list[int]:
        """Ids answered with exactly the app's response."""
        with self._lock:
            return sorted(i for i, outcome in self.outcomes.items() if outcome == self.expected(i))

    def unexpected(self, allowed: Iterable[int] = ()) -> dict[int, tuple[int, bytes] | str]:
        """Outcomes that are neither the app's response, nor a connection error, nor an ``allowed``
        status (a 500 from gunicorn cutting a request short on a quick shutdown, say)."""
        allowed = set(allowed)
        with self._lock:
            return {
                i: o
                for i, o in self.outcomes.items()
                if o != self.expected(i) and not isinstance(o, str) and o[0] not in allowed
            }

    def errors(self) -> dict[int, str]:
        with self._lock:
            return {i: o for i, o in self.outcomes.items() if isinstance(o, str)}


def records_by_path(directory: os.PathLike[str] | str) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for record in metadata_records(directory):
        found.setdefault(record["path"], []).append(record)
    return found


def wait_for_paths(
    directory: os.PathLike[str] | str, paths: Iterable[str], timeout: float = 30.0
) -> dict[str, list[dict[str, Any]]]:
    """Poll until every path has a complete report; the records by path (some missing on timeout)."""
    wanted = set(paths)
    deadline = time.monotonic() + timeout
    while True:
        found = records_by_path(directory)
        if wanted <= found.keys() or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


#: How each rendered format ends when whole.
_FORMAT_ENDINGS = {".html": b"</html>", ".speedscope.json": b"}"}


def check_report_directory(directory: os.PathLike[str] | str) -> list[dict[str, Any]]:
    """Assert that no partial report, and no partial file, is visible in ``directory``: every
    metadata record parses and names files that exist and load; every visible session loads and
    every rendered file is whole; the catalog lists exactly the records, and loads each session.
    Only hidden names (``.tmp-`` leftovers of a killed writer, ``.spool``, ``.catalog``) are exempt.
    Returns the records."""
    from gunicorn_pyinstrument.catalog import Catalog

    root = Path(directory)
    records = []
    for path in sorted(root.iterdir()):
        if path.name.startswith("."):
            continue
        assert path.is_file(), path
        data = path.read_bytes()
        assert data, f"empty file {path.name}"
        if path.name.endswith(METADATA_SUFFIX):
            record = json.loads(data)
            assert record["name"] + METADATA_SUFFIX == path.name
            for name in record["files"].values():
                assert (root / name).is_file(), f"{path.name} names {name}, which is missing"
            records.append(record)
        elif path.name.endswith(".pyisession"):
            load_session(path)
        else:
            for suffix, ending in _FORMAT_ENDINGS.items():
                if path.name.endswith(suffix):
                    assert data.rstrip().endswith(ending), f"truncated {path.name}"
    with Catalog(str(root)) as catalog:
        entries = catalog.entries()
        assert catalog.unreadable == {}
        assert sorted(e.name for e in entries) == sorted(r["name"] for r in records)
        for entry in entries:
            if "session" in entry.files:
                catalog.load_session(entry)
    return records
