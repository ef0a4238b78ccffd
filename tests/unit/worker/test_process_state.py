"""A process's profiling state under the middleware: made once, on first use, per front end; made
again in a forked child, which then writes its own reports; per greenlet under gevent."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gunicorn_pyinstrument.settings import Settings, load
from gunicorn_pyinstrument.worker import process_state
from gunicorn_pyinstrument.worker.process_state import ASGI_MIDDLEWARE, WSGI_MIDDLEWARE, request_mode

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(process_state, "_current", None)
    monkeypatch.setattr(process_state, "_hooks_pid", None)
    yield
    process_state.close()


def settings_for(directory: Path, **more: str) -> Settings:
    env = {"GUNICORN_PYINSTRUMENT": "1", "GUNICORN_PYINSTRUMENT_DIR": str(directory)}
    env["GUNICORN_PYINSTRUMENT_FORMATS"] = "session"
    env.update({f"GUNICORN_PYINSTRUMENT_{k}": v for k, v in more.items()})
    return load(env)


def test_made_once_per_process_and_front_end_even_by_concurrent_first_requests(tmp_path):
    settings = settings_for(tmp_path)
    calls: list[int] = []
    barrier = threading.Barrier(8)
    modes: list[object] = []

    def first_request() -> None:
        barrier.wait()
        modes.append(request_mode(settings, WSGI_MIDDLEWARE, lambda: calls.append(1)))

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(m) for m in modes}) == 1
    assert calls == [1]  # on the first request, then not before KEEP_UP_SECONDS
    asgi = request_mode(settings, ASGI_MIDDLEWARE)
    assert asgi is not modes[0] and asgi is request_mode(settings, ASGI_MIDDLEWARE)
    assert asgi.engine.async_mode == "strict" and modes[0].engine.async_mode == "disabled"  # type: ignore[attr-defined]
    assert asgi.identity.worker_class == "asgi-middleware" and asgi.identity.pid == os.getpid()


def test_a_failing_keep_up_is_logged_and_the_request_goes_on(tmp_path, caplog):
    def broken() -> None:
        raise OSError("no fork for you")

    with caplog.at_level(logging.ERROR, logger=process_state.LOGGER):
        assert request_mode(settings_for(tmp_path), WSGI_MIDDLEWARE, broken) is not None
    assert "could not start the helper process" in caplog.text


def test_worker_mode_is_said_to_need_the_hooks(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger=process_state.LOGGER):
        request_mode(settings_for(tmp_path, MODE="worker"), WSGI_MIDDLEWARE)
    assert "per-worker mode needs gunicorn's hooks" in caplog.text


def test_a_forked_child_makes_and_writes_with_its_own(tmp_path):
    settings = settings_for(tmp_path)
    parent = request_mode(settings, WSGI_MIDDLEWARE)
    assert parent is not None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report back through the pipe, then leave at once
        code = 1
        try:
            mode = request_mode(settings, WSGI_MIDDLEWARE)
            assert mode is not None
            active = mode.begin("GET", "/child", lambda name: None)
            assert active is not None
            deadline = time.perf_counter() + 0.02
            while time.perf_counter() < deadline:
                pass
            mode.end(active, 200)
            process_state.close()  # what atexit does in a child that exits normally
            facts = {
                "other": mode is not parent,
                "pid": mode.identity.pid,
                "instance": mode.identity.instance,
            }
            os.write(write, json.dumps(facts).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read) as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    child = json.loads(answer)
    assert child["other"] and child["pid"] == pid and child["instance"] != parent.identity.instance
    [record] = [json.loads(p.read_text()) for p in tmp_path.glob("*.meta.json")]
    assert (record["path"], record["pid"], record["worker"]["instance"]) == ("/child", pid, child["instance"])
    assert request_mode(settings, WSGI_MIDDLEWARE) is parent  # the parent's own is untouched


def test_under_gevent_a_wsgi_request_is_followed_by_its_greenlet(tmp_path):
    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import sys\n"
        "from gunicorn_pyinstrument.settings import load\n"
        "from gunicorn_pyinstrument.worker.process_state import WSGI_MIDDLEWARE, request_mode\n"
        "settings = load({'GUNICORN_PYINSTRUMENT': '1', 'GUNICORN_PYINSTRUMENT_DIR': sys.argv[1]})\n"
        "engine = request_mode(settings, WSGI_MIDDLEWARE).engine\n"
        "print(engine.greenlets, engine.async_mode)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "strict"]
