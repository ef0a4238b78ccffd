"""The sampler engine (GUNICORN_PYINSTRUMENT_ENGINE=sampler) on real gunicorn: how accurate its
times are, that concurrent requests stay apart, tail-latency capture, the fallback on worker
classes that share a thread between requests, per-worker mode, and every format of its reports.

Times are wall-clock: ``/alpha?s=S&pause=0`` burns CPU in ``alpha_work`` until S seconds of wall
time have passed (``/beta`` likewise in ``beta_work``), so S is what the report should show there.
"""

from __future__ import annotations

import http.client
import json
import pstats
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support import (
    CONFIG_FILE,
    by_path,
    function_names,
    get,
    get_many,
    load_session,
    metadata_records,
    profiling_env,
    wait_for_metadata,
)

APP = "tests.apps.interleaved_app:app"
FASTAPI_APP = "tests.apps.fastapi_app:app"
#: At the interval asked for, whatever its cost: these tests are about what the samples show (the
#: budget, GUNICORN_PYINSTRUMENT_MAX_OVERHEAD, has its own in test_sampler_budget.py).
SAMPLER = {"ENGINE": "sampler", "INTERVAL": "0.005", "FORMATS": "session", "MAX_OVERHEAD": "off"}
SYNC = ("-k", "sync", "-w", "1")
GTHREAD = ("-k", "gthread", "--threads", "4", "-w", "1")


def own_and_other(path: str) -> tuple[str, str]:
    return ("alpha_work", "beta_work") if path == "/alpha" else ("beta_work", "alpha_work")


def names(stack: list[str]) -> set[str]:
    return {frame.split("\x00", 1)[0] for frame in stack}


def time_in(session: Any, function: str) -> float:
    """Seconds attributed to ``function``: the weights of the records whose stack contains it."""
    return sum(weight for stack, weight in session.frame_records if function in names(stack))


def session_of(directory: Path, record: dict[str, Any]) -> Any:
    return load_session(directory / record["files"]["session"])


def start(gunicorn, report_dir, *args: str, **settings: str):
    return gunicorn("-c", CONFIG_FILE, *args, APP, env=profiling_env(report_dir, **{**SAMPLER, **settings}))


def test_sequential_requests_on_sync_are_timed_within_15_percent(gunicorn, report_dir):
    server = start(gunicorn, report_dir, *SYNC)
    plan = [("/alpha", 0.2), ("/beta", 0.1)] * 3
    truths = []
    for path, seconds in plan:
        # The truth is the work's wall-clock time as the app measured it (on a loaded machine it
        # runs longer than asked).
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("GET", f"{path}?s={seconds}&pause=0")
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        truths.append(float(response.getheader("X-Work-Seconds")))
        conn.close()
    records = wait_for_metadata(report_dir, len(plan))
    assert server.stop() == 0
    assert [r["path"] for r in records] == [path for path, _ in plan]

    for record, (path, _), seconds in zip(records, plan, truths, strict=True):
        own, other = own_and_other(path)
        session = session_of(report_dir, record)
        assert record["interval"] == 0.005
        assert record["samples"] == session.sample_count >= 5
        assert session.cpu_time == 0.0  # the sampler's sessions, not pyinstrument's profiler
        measured = time_in(session, own)
        assert measured == pytest.approx(seconds, rel=0.15), (path, measured, record)
        assert other not in function_names(session)
        # The weights account for the request but for the stretch after the last sample.
        total = sum(w for _, w in session.frame_records)
        assert session.duration - 0.05 <= total <= session.duration + 1e-6
        assert session.duration == pytest.approx(record["duration"], abs=0.01)
        # One thread per request: every stack starts at the worker's main thread.
        assert {stack[0].split("\x00", 1)[0] for stack, _ in session.frame_records} == {"MainThread"}


def test_concurrent_requests_on_gthread_stay_apart(gunicorn, report_dir):
    server = start(gunicorn, report_dir, *GTHREAD)
    targets = ["/alpha?s=0.15&pause=0", "/beta?s=0.15&pause=0"] * 4
    assert [status for status, _ in get_many([server.url + t for t in targets], concurrency=4)] == [200] * 8
    records = wait_for_metadata(report_dir, len(targets))
    assert server.stop() == 0
    assert len(records) == len(targets)
    assert len(by_path(records, "/alpha")) == len(by_path(records, "/beta")) == 4

    overlapped = 0
    for record in records:
        own, other = (
            ("alpha_work", "beta_work") if record["path"] == "/alpha" else ("beta_work", "alpha_work")
        )
        session = session_of(report_dir, record)
        functions = function_names(session)
        assert own in functions, record
        assert other not in functions, record
        # Every stack is of the one pool thread that served the request.
        assert len({stack[0] for stack, _ in session.frame_records}) == 1
        assert time_in(session, own) > 0.1
        overlapped += any(
            r is not record and r["start"] < record["end"] and record["start"] < r["end"] for r in records
        )
    assert overlapped >= 2  # the requests really did run at the same time


def test_only_slow_requests_are_kept(gunicorn, report_dir):
    server = start(gunicorn, report_dir, *SYNC, SAMPLE_RATE="1", MIN_DURATION="0.15")
    # Fast requests on /beta, slow ones on /alpha: a fast one is kept only if the machine made it
    # slow (its recorded duration then says so).
    plan = [("/beta", 0.01), ("/beta", 0.01), ("/alpha", 0.3), ("/beta", 0.01)] * 2
    for path, seconds in plan:
        assert get(f"{server.url}{path}?s={seconds}&pause=0")[0] == 200
    assert server.stop() == 0  # flushes the writer: whatever will be written has been
    records = metadata_records(report_dir)
    assert len(by_path(records, "/alpha")) == 2, [r["duration"] for r in records]
    for record in records:
        assert record["duration"] >= 0.15
    for record in by_path(records, "/alpha"):
        session = session_of(report_dir, record)
        assert "alpha_work" in function_names(session)
        assert time_in(session, "alpha_work") >= 0.3 * 0.85


def test_gevent_requests_are_sampled_by_their_greenlet(gunicorn, report_dir):
    server = start(gunicorn, report_dir, "-k", "gevent", "-w", "1")
    for _ in range(2):
        assert get(server.url + "/alpha?s=0.05&pause=0.001")[0] == 200
    records = wait_for_metadata(report_dir, 2)
    assert server.stop() == 0
    assert len(records) == 2
    assert "sampler engine cannot" not in server.log  # no fallback to the pyinstrument engine
    for record in records:
        assert record["worker"]["class"] == "GeventWorker"
        session = session_of(report_dir, record)
        assert "alpha_work" in function_names(session)
        assert session.cpu_time == 0  # the sampler's: pyinstrument's profiler measures CPU time


def test_worker_mode_sees_pool_threads(gunicorn, report_dir):
    server = start(
        gunicorn,
        report_dir,
        *GTHREAD,
        "--timeout",
        "2",
        MODE="worker",
        FLUSH_INTERVAL="1",
    )

    def timed(url: str) -> tuple[int, float]:
        t0 = time.perf_counter()
        status, _ = get(url)
        return status, time.perf_counter() - t0

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(timed, [server.url + "/alpha?s=0.25&pause=0"] * 4))
    assert [status for status, _ in results] == [200] * 4
    time.sleep(1.2)  # a window closes on the heartbeat after FLUSH_INTERVAL
    assert server.stop() == 0
    windows = metadata_records(report_dir)
    assert windows and all(w["path"] is None for w in windows)
    sessions = [session_of(report_dir, w) for w in windows]
    with_alpha = [s for s in sessions if "alpha_work" in function_names(s)]
    assert with_alpha, [sorted(function_names(s))[:20] for s in sessions]
    # The work ran on gthread's pool threads, which only a capture of every thread sees.
    for session in with_alpha:
        for stack, _ in session.frame_records:
            if "alpha_work" in names(stack):
                assert "_worker" in names(stack)  # concurrent.futures' pool thread loop
    # Four requests of at least 0.25 s of wall time each in alpha_work (more: the four threads take
    # turns at the GIL, and each burst ends only when its thread next runs); never more than the
    # requests lasted, as the client saw them, but for a thread's first sample in a segment, which
    # stands for the time since the segment began (one sampling gap per thread at most).
    total = sum(time_in(s, "alpha_work") for s in sessions)
    assert 4 * 0.25 * 0.85 <= total <= sum(seconds for _, seconds in results) + 4 * 0.1, (total, results)


def test_every_format_of_a_sampler_report_loads(gunicorn, report_dir):
    formats = "session,html,speedscope,pstats,text"
    server = start(gunicorn, report_dir, *SYNC, FORMATS=formats)
    assert get(server.url + "/alpha?s=0.1&pause=0")[0] == 200
    assert server.stop() == 0  # waits for the renderer process too
    records = wait_for_metadata(report_dir, 1)
    assert len(records) == 1
    files = {fmt: report_dir / name for fmt, name in records[0]["files"].items()}
    assert set(files) == set(formats.split(","))

    session = load_session(files["session"])
    assert "alpha_work" in function_names(session)
    # At least the work asked for (a busy machine only stretches wall-clock time), and no more
    # than the request took.
    assert 0.085 <= time_in(session, "alpha_work") <= session.duration + 1e-6

    speedscope = json.loads(files["speedscope"].read_text())
    assert speedscope["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert any(frame["name"] == "alpha_work" for frame in speedscope["shared"]["frames"])

    stats = pstats.Stats(str(files["pstats"]))
    assert any(function == "alpha_work" for (_, _, function) in stats.stats)  # type: ignore[attr-defined]

    html = files["html"].read_text()
    assert "<html" in html.lower()
    assert "alpha_work" in files["text"].read_text()


def test_worker_mode_sees_an_asgi_apps_pool_threads(gunicorn, report_dir):
    """Per-worker mode with the sampler on the asgi worker: a FastAPI ``def`` endpoint runs in
    anyio's worker threads, and its work is in the windows."""
    env = profiling_env(report_dir, **{**SAMPLER, "MODE": "worker", "FLUSH_INTERVAL": "1"})
    server = gunicorn(
        "-c", CONFIG_FILE, "-k", "uvicorn_worker.UvicornWorker", "-w", "1", FASTAPI_APP, env=env
    )
    for n in range(3):
        assert get(f"{server.url}/pool/red/{n}?s=0.1")[0] == 200
    time.sleep(1.2)  # the window turns over after the next request or heartbeat
    assert get(f"{server.url}/pool/fast/9")[0] == 200
    assert server.stop() == 0
    sessions = [session_of(report_dir, w) for w in metadata_records(report_dir)]
    assert sum(time_in(s, "red_pool_work") for s in sessions) >= 3 * 0.1 * 0.85
