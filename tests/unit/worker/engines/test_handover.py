"""Pool work followed into the request's profile, in-process: every way of handing work to a
thread pool, on asyncio and uvloop, with both engines, three requests at once; nested hand-overs,
parallel jobs, cancellation; the patches in only while an engine uses them."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import subprocess
import sys
import time
from typing import Any

import anyio.to_thread
import pytest
from asgiref.sync import sync_to_async

from gunicorn_pyinstrument.worker.engines import handover
from gunicorn_pyinstrument.worker.engines.pyinstrument import PyinstrumentEngine
from gunicorn_pyinstrument.worker.engines.sampler import SamplerEngine

CUSTOM = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="custom")
INNER = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="inner")
INTERVAL = 0.001


def busy(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def job_a() -> None:
    busy(0.03)
    time.sleep(0.02)


def job_b() -> None:
    busy(0.03)
    time.sleep(0.02)


def nested_outer() -> None:
    busy(0.02)
    INNER.submit(nested_inner).result()


def nested_inner() -> None:
    busy(0.06)


def loop_cpu() -> None:
    busy(0.01)


async def hand_over(kind: str, job: Any) -> None:
    loop = asyncio.get_running_loop()
    if kind == "executor-default":
        await loop.run_in_executor(None, job)
    elif kind == "executor-custom":
        await loop.run_in_executor(CUSTOM, job)
    elif kind == "to-thread":
        await asyncio.to_thread(job)
    elif kind == "anyio":
        await anyio.to_thread.run_sync(job)
    elif kind == "asgiref":
        await sync_to_async(job, thread_sensitive=False)()
    elif kind == "asgiref-thread-sensitive":
        await sync_to_async(job, thread_sensitive=True)()


#: The function each kind of hand-over leaves on the stack above the job.
UNDER = {
    "executor-default": "handler",
    "executor-custom": "handler",
    "to-thread": "to_thread",
    "anyio": "run_sync",
    "asgiref": "__call__",
    "asgiref-thread-sensitive": "__call__",
}


async def handler(kind: str, job: Any) -> None:
    await hand_over(kind, job)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    kind, _, who = scope["path"].strip("/").rpartition("/")
    if who == "loop":  # CPU on the loop meanwhile: never in the other requests' reports
        for _ in range(4):
            loop_cpu()
            await asyncio.sleep(0.005)
    elif who == "nested":
        await asyncio.to_thread(nested_outer)
    else:
        await handler(kind, {"a": job_a, "b": job_b}[who])
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def make_engine(kind: str) -> Any:
    return SamplerEngine(INTERVAL) if kind == "sampler" else PyinstrumentEngine(INTERVAL, "strict")


def serve(asgi_app: Any, paths: list[str], engine_kind: str, loop_kind: str = "asyncio") -> dict[str, Any]:
    """Serve ``paths`` at once, each profiled as the ASGI wrapper does; each path's session."""
    engine = make_engine(engine_kind)
    sessions: dict[str, Any] = {}

    async def profiled(path: str) -> None:
        async def send(message: dict[str, Any]) -> None:
            pass

        request = asgi_app({"type": "http", "path": path}, None, send)
        capture = engine.start(path, request, sys._getframe())
        try:
            await request
        finally:
            sessions[path] = engine.stop(capture)

    async def main() -> None:
        await asyncio.gather(*(profiled(p) for p in paths))

    if loop_kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(main())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()
    return sessions


def names(stack: list[str]) -> list[str]:
    return [frame.split("\x00", 1)[0] for frame in stack]


def time_in(session: Any, function: str) -> float:
    return sum(t for stack, t in session.frame_records if function in names(stack))


def await_time(session: Any) -> float:
    return sum(t for stack, t in session.frame_records if stack and stack[-1] == "[await]")


def await_outside(session: Any, function: str) -> float:
    """``[await]`` time not under ``function`` (a job's waits for its own jobs are in it)."""
    return sum(
        t for stack, t in session.frame_records if stack[-1:] == ["[await]"] and function not in names(stack)
    )


def total(session: Any) -> float:
    return sum(t for _, t in session.frame_records)


def show(session: Any) -> str:
    lines = [f"total {total(session):.4f}, duration {session.duration:.4f}"]
    lines += [f"  {t:.4f} {' > '.join(names(s)[-10:])}" for s, t in session.frame_records[:40]]
    return "\n".join(lines)


def assert_grafted(session: Any, function: str, expected: float, under: str, foreign: list[str]) -> None:
    """``function`` got about ``expected`` seconds, always below ``under``; no other request's
    function; no pool plumbing; nothing added to the request's time."""
    got = time_in(session, function)
    assert got >= 0.6 * expected, show(session)
    for stack, _ in session.frame_records:
        stack_names = names(stack)
        assert not set(foreign) & set(stack_names), show(session)
        if function in stack_names:
            above = stack_names[: stack_names.index(function)]
            assert under in above, show(session)
            assert not {"_worker", "run_job", "_bootstrap"} & set(above), show(session)
    assert total(session) <= session.duration + 0.003 + 0.15 * session.duration, show(session)


@pytest.mark.parametrize("loop_kind", ["asyncio", "uvloop"])
@pytest.mark.parametrize("engine", ["sampler", "pyinstrument"])
@pytest.mark.parametrize("kind", list(UNDER))
def test_pool_work_belongs_to_its_request(kind, engine, loop_kind):
    sessions = serve(app, [f"/{kind}/a", f"/{kind}/b", f"/{kind}/loop"], engine, loop_kind)
    a, b, loop = sessions[f"/{kind}/a"], sessions[f"/{kind}/b"], sessions[f"/{kind}/loop"]
    assert_grafted(a, "job_a", 0.05, UNDER[kind], ["job_b", "loop_cpu"])
    assert_grafted(b, "job_b", 0.05, UNDER[kind], ["job_a", "loop_cpu"])
    assert time_in(loop, "job_a") == time_in(loop, "job_b") == 0, show(loop)
    if engine == "sampler":
        assert total(a) == pytest.approx(a.duration, abs=1e-6)  # nothing counted twice
    if kind != "asgiref-thread-sensitive":  # one thread for both requests: they queue for it
        assert await_time(a) < 0.6 * time_in(a, "job_a") + 0.01, show(a)


@pytest.mark.parametrize("engine", ["sampler", "pyinstrument"])
def test_a_job_that_hands_over_work_itself(engine):
    sessions = serve(app, ["/x/nested", "/to-thread/a"], engine)
    nested = sessions["/x/nested"]
    assert_grafted(nested, "nested_inner", 0.06, "nested_outer", ["job_a"])
    assert_grafted(nested, "nested_outer", 0.08, "to_thread", ["job_a"])
    # The jobs took the place of the request's wait: what is left of it is the queueing.
    assert await_outside(nested, "nested_outer") < 0.6 * time_in(nested, "nested_outer") + 0.01, show(nested)


def par_a() -> None:
    time.sleep(0.03)


def par_b() -> None:
    time.sleep(0.03)


@pytest.mark.parametrize("engine", ["sampler", "pyinstrument"])
def test_parallel_jobs_of_one_request_share_its_time(engine):
    async def gathering(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.gather(asyncio.to_thread(par_a), asyncio.to_thread(par_b))

    session = serve(gathering, ["/g"], engine)["/g"]
    assert time_in(session, "par_a") > 0.008 and time_in(session, "par_b") > 0.008, show(session)
    assert time_in(session, "par_a") + time_in(session, "par_b") <= total(session) + 1e-6


@pytest.mark.parametrize("engine", ["sampler", "pyinstrument"])
def test_a_cancelled_request_leaves_the_pool_clean_for_the_next(engine):
    async def cancelling(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/cancel":
            task = asyncio.ensure_future(asyncio.to_thread(job_a))
            await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0.06)  # job_a finishes meanwhile, in the pool
        else:
            await asyncio.sleep(0.02)
            await asyncio.to_thread(job_b)

    sessions = serve(cancelling, ["/cancel", "/next"], engine)
    assert_grafted(sessions["/next"], "job_b", 0.05, "to_thread", ["job_a"])


#: Run in a fresh interpreter: what is patched after a worker's request mode has seen requests.
PATCH_CHECK = """
import concurrent.futures, json, sys
from anyio._backends._asyncio import AsyncIOBackend
from gunicorn.workers.ggevent import GeventWorker
from gunicorn.workers.sync import SyncWorker
from gunicorn_pyinstrument.settings import load
from gunicorn_pyinstrument.worker.engines import handover
from gunicorn_pyinstrument.worker.request_mode import RequestMode

submit = concurrent.futures.ThreadPoolExecutor.__dict__["submit"]
run_sync = AsyncIOBackend.__dict__["run_sync_in_worker_thread"]
env = dict(GUNICORN_PYINSTRUMENT="1", GUNICORN_PYINSTRUMENT_DIR=sys.argv[1],
           GUNICORN_PYINSTRUMENT_SAMPLE_RATE=sys.argv[2], GUNICORN_PYINSTRUMENT_ENGINE=sys.argv[3])
mode = RequestMode(load(env), SyncWorker.__new__(GeventWorker if sys.argv[4] == "gevent" else SyncWorker))
for _ in range(3):
    active = mode.begin("GET", "/", lambda name: None)
    if active is not None:
        mode.end(active, 200)
mode.close()
import greenlet
print(json.dumps({
    "submit": concurrent.futures.ThreadPoolExecutor.__dict__["submit"] is not submit,
    "anyio": AsyncIOBackend.__dict__["run_sync_in_worker_thread"] is not run_sync,
    "profile": sys.getprofile() is not None,
    "greenlet_trace": greenlet.gettrace() is not None,
    "installed": handover.installed(),
}))
"""


@pytest.mark.parametrize("engine", ["pyinstrument", "sampler"])
@pytest.mark.parametrize("worker", ["sync", "gevent"])
def test_nothing_is_patched_until_a_request_is_profiled(tmp_path, engine, worker):
    """Requests not chosen (sample rate 0) leave everything as it was: no patch, no hook on
    calls or greenlet switches. Chosen ones put the pool patches in; a greenlet trace only lives
    while a profiled greenlet does."""

    def patched(rate: str) -> dict[str, bool]:
        command = [sys.executable, "-c", PATCH_CHECK, str(tmp_path / rate), rate, engine, worker]
        out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))

    assert patched("0") == dict.fromkeys(["submit", "anyio", "profile", "greenlet_trace", "installed"], False)
    assert patched("1") == {
        "submit": True,
        "anyio": True,
        "profile": False,
        "greenlet_trace": False,
        "installed": True,
    }


def test_uninstall_restores_the_originals():
    submit = concurrent.futures.ThreadPoolExecutor.__dict__["submit"]
    from anyio._backends._asyncio import AsyncIOBackend

    run_sync = AsyncIOBackend.__dict__["run_sync_in_worker_thread"]
    handover.install()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # no request profiled: as it was
            assert pool.submit(handover.CURRENT.get).result() is None
    finally:
        handover.uninstall()
    assert concurrent.futures.ThreadPoolExecutor.__dict__["submit"] is submit
    assert AsyncIOBackend.__dict__["run_sync_in_worker_thread"] is run_sync
