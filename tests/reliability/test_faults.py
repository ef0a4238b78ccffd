"""Faults around the plugin: the output directory goes away, turns read-only, becomes a file, or
fills up; a worker is killed in the middle of writing a report.

Each fault runs under a concurrent load on a real server (two sync workers, the default formats
``session,html`` unless stated). What is checked, every time: every response is exactly the app's;
no worker exits; the plugin says so through gunicorn's logger at most once per worker for the
fault, not once per request; reports appear again, while the server runs, once the fault is gone;
and no partial report, nor a truncated file, is ever visible.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import (
    CONFIG_FILE,
    Gunicorn,
    Load,
    check_report_directory,
    profiling_env,
    records_by_path,
    renderer_processes,
    spool_files,
    wait_for_paths,
)

APP = "tests.apps.reliability_app:app"
WORKERS = 2
WRITE_FAILED = "gunicorn-pyinstrument: could not write report"
#: What a worker that failed to write or dropped reports says when it exits.
SUMMARY = re.compile(r"worker \d+: \d+ reports written, \d+ dropped \(queue full\), (\d+) failed")
#: Requests made while the fault lasts.
DURING = 24


def plugin_lines(log: str) -> list[str]:
    """The plugin's problem lines in gunicorn's log, and the renderer's."""
    return [
        line
        for line in log.splitlines()
        if re.search(r"\[(ERROR|WARNING)\] gunicorn-pyinstrument: ", line)
        or line.startswith("gunicorn-pyinstrument helper: ")
    ]


def run(server: Gunicorn, first: int, count: int, kind: str = "work", query: str = "s=0.02") -> Load:
    """``count`` requests from 4 concurrent clients; every one answered exactly as the app does."""
    with Load(server.url, kind, query, threads=4, limit=count, first=first) as load:
        load.wait(count)
    assert load.answered() == list(range(first, first + count)), (load.unexpected(), load.errors())
    return load


def paths_of(load: Load) -> list[str]:
    return [load.path(i) for i in load.answered()]


@dataclass
class Fault:
    inject: Callable[[], object]
    remove: Callable[[], object]
    #: Whether the workers must meet the fault (False: they may cope without a failed write).
    reported: bool = True


def start(gunicorn, report_dir: Path, formats: str = "session,html") -> Gunicorn:
    server = gunicorn(
        "-c", CONFIG_FILE, "-w", str(WORKERS), APP, env=profiling_env(report_dir, FORMATS=formats)
    )
    assert len(server.booted_workers()) == WORKERS
    return server


def exercise(
    server: Gunicorn,
    report_dir: Path,
    fault: Fault,
    formats: str = "session,html",
    kind: str = "work",
    query: str = "s=0.02",
) -> None:
    """Before, during and after the fault, 24 requests each; the checks in the module docstring."""
    workers = sorted(server.booted_workers())
    before = run(server, 0, 24, kind, query)
    found = wait_for_paths(report_dir, paths_of(before))
    assert set(paths_of(before)) <= found.keys()

    fault.inject()
    try:
        run(server, 1000, DURING, kind, query)
    finally:
        fault.remove()

    after = run(server, 2000, 24, kind, query)
    # Recovered while running: the reports of the requests after the fault are all complete,
    # rendered formats included, without a restart.
    found = wait_for_paths(report_dir, paths_of(after))
    missing = set(paths_of(after)) - found.keys()
    assert not missing, (sorted(missing)[:5], server.log)
    for path in paths_of(after):
        [record] = found[path]
        assert set(record["files"]) == set(formats.split(","))

    # No worker was lost or replaced.
    assert sorted(server.worker_pids()) == workers, server.log
    assert sorted(server.booted_workers()) == workers
    assert "Worker exiting" not in server.log
    assert "Exception in post_request hook" not in server.log
    assert "Error handling request" not in server.log
    # Said once per worker, not once per failed request.
    failures = [line for line in server.log.splitlines() if WRITE_FAILED in line]
    assert (1 if fault.reported else 0) <= len(failures) <= WORKERS, server.log
    problems = plugin_lines(server.log)
    assert len(problems) <= 2 * WORKERS + 1, problems

    assert server.stop() == 0
    if fault.reported:
        # Each request made during the fault was either counted as failed (the workers say how
        # many when they exit; the log said so only once per worker) or, handed to the writer
        # thread just before the fault ended, reported in full.
        counts = SUMMARY.findall(server.log)
        reported = records_by_path(report_dir).keys() & {f"/{kind}/{i}" for i in range(1000, 1000 + DURING)}
        assert sum(map(int, counts)) + len(reported) == DURING, (counts, sorted(reported))
    check_report_directory(report_dir)
    assert [p.name for p in spool_files(report_dir) if not p.name.endswith(".job.json")] == []


# --- the faults ---


def removed_once(directory: Path) -> None:
    """Remove the directory while writers may be adding to it (retried until it is gone)."""
    for _ in range(100):
        try:
            shutil.rmtree(directory)
            return
        except FileNotFoundError:
            return
        except OSError:  # a file appeared while it was being emptied
            time.sleep(0.01)
    raise AssertionError(f"could not remove {directory}")


def test_directory_removed_again_and_again(gunicorn, report_dir):
    """Removed five times while requests are being reported: the plugin makes it again each time."""
    server = start(gunicorn, report_dir)

    def remove_repeatedly() -> None:
        for _ in range(5):
            removed_once(report_dir)
            time.sleep(0.05)

    remover = threading.Thread(target=remove_repeatedly)
    exercise(server, report_dir, Fault(remover.start, lambda: remover.join(30), reported=False))


def test_directory_replaced_by_a_file(gunicorn, report_dir):
    server = start(gunicorn, report_dir)

    def inject() -> None:
        removed_once(report_dir)
        report_dir.write_text("not a directory\n")

    # Removing the file is all it takes: the plugin makes the directory again.
    exercise(server, report_dir, Fault(inject, report_dir.unlink))


@dataclass
class ReadOnly:
    inject: Callable[[], object]
    remove: Callable[[], object]
    #: Whether the directories inside (the spool) turn read-only too.
    whole_tree: bool


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[ReadOnly]:
    """How to make ``directory`` read-only for the server. For a user other than root, ``chmod``;
    root ignores modes, so ``chattr +i`` (where the file system supports it), else a read-only
    bind mount; else the test is skipped, saying why."""
    directory.mkdir(mode=0o700)
    (directory / ".spool").mkdir(mode=0o700)
    probe = directory / "probe"

    def refused() -> bool:
        try:
            probe.write_text("x")
        except OSError:
            return True
        probe.unlink()
        return False

    if os.geteuid() != 0:
        yield ReadOnly(lambda: directory.chmod(0o500), lambda: directory.chmod(0o700), whole_tree=False)
        directory.chmod(0o700)
        return
    tried = []
    chattr = shutil.which("chattr")
    if chattr:
        immutable = [chattr, "+i", str(directory)]
        mutable = [chattr, "-i", str(directory)]
        result = subprocess.run(immutable, capture_output=True, text=True, check=False)
        works = result.returncode == 0 and refused()
        subprocess.run(mutable, capture_output=True, check=False)
        if works:
            try:
                yield ReadOnly(
                    lambda: subprocess.run(immutable, check=True),
                    lambda: subprocess.run(mutable, check=True),
                    whole_tree=False,
                )
            finally:
                subprocess.run(mutable, capture_output=True, check=False)
            return
        tried.append(f"chattr +i: {result.stderr.strip() or 'writes still succeed'}")
    mount = shutil.which("mount")
    if mount:
        bind = [mount, "--bind", str(directory), str(directory)]
        remount = [mount, "-o", "remount,bind,ro", str(directory)]
        unmount = ["umount", "-l", str(directory)]

        def mount_read_only() -> None:
            subprocess.run(bind, check=True, capture_output=True)
            subprocess.run(remount, check=True, capture_output=True)

        try:
            mount_read_only()
            works = refused()
        except subprocess.CalledProcessError as exc:
            works = False
            tried.append(f"read-only bind mount: {exc.stderr.decode(errors='replace').strip()}")
        subprocess.run(unmount, capture_output=True, check=False)
        if works:
            try:
                yield ReadOnly(mount_read_only, lambda: subprocess.run(unmount, check=True), whole_tree=True)
            finally:
                subprocess.run(unmount, capture_output=True, check=False)
            return
    pytest.skip("cannot make a directory read-only for root here: " + "; ".join(tried))


@pytest.mark.parametrize("formats", ["session,html", "html"])
def test_directory_read_only(gunicorn, report_dir, formats):
    """With ``html`` alone, workers keep the session in the spool, and (unless the spool turns
    read-only too) only the renderer meets the fault: it must keep the jobs for later, not lose them."""
    with read_only(report_dir) as fault:
        server = start(gunicorn, report_dir, formats)
        workers_meet_it = formats != "html" or fault.whole_tree
        exercise(server, report_dir, Fault(fault.inject, fault.remove, reported=workers_meet_it), formats)
    if not workers_meet_it:
        # The jobs of the requests made during the fault waited in the spool, and were rendered.
        assert {f"/work/{i}" for i in range(1000, 1024)} <= records_by_path(report_dir).keys()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs mounted for the test (root only)."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()} (test_file_size_limit stands in)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full(gunicorn, small_disk):
    report_dir = small_disk / "reports"
    filler = small_disk / "filler"
    server = start(gunicorn, report_dir)

    def fill() -> None:
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            block = 1 << 20
            while block:
                try:
                    os.write(fd, b"\0" * block)
                except OSError:  # ENOSPC: on with smaller blocks, to the last byte
                    block //= 2
        finally:
            os.close(fd)
        assert shutil.disk_usage(small_disk).free < 8192

    exercise(server, report_dir, Fault(fill, filler.unlink))


def test_file_size_limit(gunicorn, report_dir):
    """Stands for a full disk where no tmpfs can be mounted: writes past the limit fail with EFBIG
    (Python ignores SIGXFSZ). The limit is lowered on every process of the server, the renderer
    included, and leaves room for gunicorn's log; the sessions of ``/deep`` requests are larger."""
    server = start(gunicorn, report_dir)

    def processes() -> list[int]:
        return [server.pid, *server.booted_workers(), *renderer_processes(parent=server.pid)]

    def limit() -> None:
        size = server.log_path.stat().st_size + (256 << 10)
        for pid in processes():
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))

    def unlimit() -> None:
        for pid in processes():
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    exercise(server, report_dir, Fault(limit, unlimit), kind="deep", query="s=0.1&depth=150")


# --- a worker killed in the middle of writing ---


def open_temporary_files(pid: int, directory: Path) -> list[str]:
    """The ``.tmp-`` files of ``directory`` that process ``pid`` has open (from /proc)."""
    names = []
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith(str(directory) + "/.tmp-"):
                    names.append(target)
    return names


def stopped(pid: int, timeout: float = 2.0) -> bool:
    """Wait until every thread of a process sent SIGSTOP is stopped (state ``T`` in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = []
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/stat") as f:
                    states.append(f.read().rpartition(")")[2].split()[0])
        except (OSError, IndexError):
            return False
        if states and all(state in ("T", "t") for state in states):
            return True
        time.sleep(0.001)
    return False


def test_worker_killed_while_writing(gunicorn, report_dir):
    """A worker writing multi-megabyte sessions is frozen the moment it holds a ``.tmp-`` file
    open, then killed with SIGKILL, several times: the master replaces it, profiling goes on in the
    new worker, and what is visible is only ever whole reports."""
    env = profiling_env(report_dir, FORMATS="session")
    server = gunicorn("-c", CONFIG_FILE, "-w", "1", APP, env=env)
    kills_mid_write = 0
    killed: list[int] = []
    deadline = time.monotonic() + 30
    with Load(server.url, "deep", "s=0.15&depth=200", threads=2, limit=400) as load:
        while kills_mid_write < 3 and time.monotonic() < deadline:
            [worker] = [pid for pid in server.booted_workers() if pid not in killed] or [None]
            if worker is None:
                time.sleep(0.01)
                continue
            if not open_temporary_files(worker, report_dir):
                continue
            os.kill(worker, signal.SIGSTOP)  # a worker of this test's server
            if stopped(worker) and open_temporary_files(worker, report_dir):
                os.kill(worker, signal.SIGKILL)
                killed.append(worker)
                kills_mid_write += 1
            else:
                os.kill(worker, signal.SIGCONT)  # the write had just finished: try again
        assert kills_mid_write == 3, f"no kill in the middle of a write within 30s ({kills_mid_write})"
        # The master replaces the worker; the load goes on against the new one.
        settle = load.done() + 6
        load.wait(settle)
    # A request whose worker was killed gets no answer; every answer is the app's.
    assert load.unexpected() == {}
    assert len(load.errors()) <= 2 * kills_mid_write, load.errors()
    for pid in killed:
        assert f"Worker (pid:{pid}) was sent SIGKILL" in server.log

    # Profiling goes on in the new worker: requests it serves now are all reported.
    [worker] = [pid for pid in server.booted_workers() if pid not in killed]
    later = run(server, 5000, 4, kind="deep", query="s=0.05&depth=100")
    found = wait_for_paths(report_dir, paths_of(later))
    assert all(found[path][0]["pid"] == worker for path in paths_of(later))
    assert server.stop() == 0

    records = check_report_directory(report_dir)
    # What the kills left behind is hidden: a .tmp- file per interrupted write, never a report.
    leftovers = [p.name for p in report_dir.iterdir() if p.name.startswith(".tmp-")]
    assert len(leftovers) == kills_mid_write
    # A killed worker loses the report it was writing (and any queued behind it), no other.
    reported = {record["path"] for record in records}
    lost = [load.path(i) for i in load.answered() if load.path(i) not in reported]
    assert len(lost) <= 2 * kills_mid_write, lost
