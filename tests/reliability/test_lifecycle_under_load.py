"""Workers come and go, and servers stop, while requests keep coming: no report of an answered
request is lost. A bounded concurrent request loop runs through each event; every request that got
its complete 200 response (matched by the unique id in its path, ``/work/<id>``) must have a
complete report, and every report must load.

tests/integration/test_lifecycle.py and test_recycling.py show each event with the server idle,
or right after a burst; here the requests are in flight when it happens.
"""

from __future__ import annotations

import http.client
import os
import signal
import threading
import time

import pytest
from support import (
    CONFIG_FILE,
    Gunicorn,
    Load,
    check_report_directory,
    get,
    needs_clean_gthread_recycling,
    profiling_env,
    records_by_path,
    skip_unless_gthread_recycles_cleanly,
)

APP = "tests.apps.reliability_app:app"

WORKERS = {
    "sync": ["-k", "sync"],
    "gthread": ["-k", "gthread", "--threads", "4"],
}


def assert_every_answer_reported(load: Load, directory) -> dict[str, list[dict]]:
    """Every request answered with the app's complete response has exactly one report, with its
    status; and what the directory shows is whole."""
    records = records_by_path(directory)
    answered = [load.path(i) for i in load.answered()]
    missing = [path for path in answered if path not in records]
    assert not missing, f"{len(missing)} of {len(answered)} answered requests have no report: {missing[:10]}"
    for path in answered:
        [record] = records[path]
        assert (record["status"], record["outcome"]) == (200, "complete"), record
    check_report_directory(directory)
    return records


def wait_for_new_workers(server: Gunicorn, old: set[int], count: int, timeout: float = 20.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while len(set(server.booted_workers()) - old) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    new = set(server.booted_workers()) - old
    assert len(new) >= count, server.log
    return new


#: gunicorn's own answer to a request cut short.
GUNICORN_500 = b"HTTP/1.1 500 Internal Server Error"


def cut_short_by_gunicorn(outcome: tuple[int, bytes] | str) -> bool:
    """gunicorn's 500, or the start of it read as the body of a 200: its sync worker may send the
    500 after the app's status line went out, when the quick stop's SystemExit lands between
    writing the headers and marking them sent (``Response.send_headers``). Seen just the same
    with the plugin off."""
    if isinstance(outcome, str):
        return False
    status, body = outcome
    return status == 500 or (status == 200 and body != b"" and GUNICORN_500.startswith(body))


def settled(server: Gunicorn, workers: int, timeout: float = 15.0) -> None:
    """Until the server runs exactly ``workers`` workers, every one booted: a worker signalled
    before it has set up its own handlers loses the signal, and gunicorn then waits out its
    graceful timeout (see ``Gunicorn.wait_ready``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [pid for pid in server.worker_pids() if running(pid)]
        if len(alive) == workers and set(alive) <= set(server.booted_workers()):
            return
        time.sleep(0.02)
    raise AssertionError(f"workers did not settle in {timeout:g}s:\n{server.log}")


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize("worker", list(WORKERS))
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT], ids=["TERM", "INT", "QUIT"])
def test_stop_under_load(gunicorn, report_dir, worker, sig):
    # A short graceful timeout: on a quick stop, gunicorn's gthread worker can hang in its own
    # SIGQUIT handler, plugin or not (rarely: ThreadPoolExecutor.shutdown waits for the lock that
    # the ThreadPoolExecutor.submit it interrupted holds, on the same thread). The master kills it
    # when the graceful timeout expires; its pool threads have answered their requests and handed
    # the profiles to the writer thread by then, so the checks below still hold.
    args = [*WORKERS[worker], "-w", "2", "--graceful-timeout", "5"]
    server = gunicorn("-c", CONFIG_FILE, *args, APP, env=profiling_env(report_dir))
    with Load(server.url, threads=6, limit=200) as load:
        load.wait(30)
        assert server.stop(sig) == 0
    # A graceful stop finishes what it accepted. A quick one (INT, QUIT) may cut a request short:
    # gunicorn then answers 500 itself. Connections not yet accepted are refused or reset.
    quick = sig != signal.SIGTERM
    unexpected = {i: o for i, o in load.unexpected().items() if not (quick and cut_short_by_gunicorn(o))}
    assert unexpected == {}
    assert len(load.answered()) >= 30
    assert_every_answer_reported(load, report_dir)


@pytest.mark.parametrize("worker", list(WORKERS))
def test_max_requests_under_load(gunicorn, report_dir, worker):
    """Each worker is replaced after 10 requests while 6 clients keep sending."""
    if worker == "gthread":
        skip_unless_gthread_recycles_cleanly()
    args = [*WORKERS[worker], "-w", "2", "--max-requests", "10"]
    server = gunicorn("-c", CONFIG_FILE, *args, APP, env=profiling_env(report_dir, FORMATS="session"))
    with Load(server.url, threads=6, limit=100) as load:
        load.wait(100)
    settled(server, 2)
    assert server.stop() == 0
    assert load.unexpected() == {}
    assert load.errors() == {}
    # Replaced again and again (a gthread worker may finish a few requests past its quota).
    assert len(server.worker_pids()) >= 6, server.log
    records = assert_every_answer_reported(load, report_dir)
    assert len({r[0]["pid"] for r in records.values()}) >= 6


@needs_clean_gthread_recycling
def test_hup_reload_under_load(gunicorn, report_dir):
    """Two reloads while 6 clients keep sending: every old worker finishes and flushes its reports."""
    args = [*WORKERS["gthread"], "-w", "2"]
    server = gunicorn("-c", CONFIG_FILE, *args, APP, env=profiling_env(report_dir))
    generations = [set(server.booted_workers())]
    with Load(server.url, threads=6, limit=2000) as load:
        for _ in range(2):
            load.wait(load.done() + 20)
            os.kill(server.pid, signal.SIGHUP)
            generations.append(wait_for_new_workers(server, set().union(*generations), 2))
        load.wait(load.done() + 20)
    settled(server, 2)
    assert server.stop() == 0
    assert load.unexpected() == {}
    assert load.errors() == {}
    records = assert_every_answer_reported(load, report_dir)
    # Each generation of workers served, and was profiled.
    pids = {r[0]["pid"] for r in records.values()}
    assert all(pids & generation for generation in generations), (generations, pids)


def test_timeout_under_load(gunicorn, report_dir):
    """One request is stuck past --timeout while others keep coming: the master aborts that worker
    (its profile is written, marked as a timeout), the other worker goes on, and nothing it or the
    aborted worker answered is lost."""
    args = ["-k", "sync", "-w", "2", "--timeout", "2"]
    server = gunicorn("-c", CONFIG_FILE, *args, APP, env=profiling_env(report_dir, FORMATS="session"))
    first = set(server.booted_workers())
    stuck: list[object] = []

    def send_stuck() -> None:
        try:
            stuck.append(get(f"{server.url}/stuck/1?s=30", timeout=20))
        except (OSError, http.client.HTTPException) as exc:
            stuck.append(exc)

    with Load(server.url, threads=3, limit=2000, first=100) as load:
        load.wait(10)
        sender = threading.Thread(target=send_stuck)
        sender.start()
        sender.join(20)
        replaced = wait_for_new_workers(server, first, 1)
        load.wait(load.done() + 10)
    settled(server, 2)
    assert server.stop() == 0
    [outcome] = stuck
    assert not isinstance(outcome, tuple) or outcome[0] >= 500, outcome
    assert load.unexpected() == {}
    assert load.errors() == {}
    records = assert_every_answer_reported(load, report_dir)
    [timed_out] = records["/stuck/1"]
    assert (timed_out["outcome"], timed_out["status"]) == ("timeout", None)
    assert timed_out["pid"] in first
    assert any(r[0]["pid"] in replaced for path, r in records.items() if path.startswith("/work/"))
