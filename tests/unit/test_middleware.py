"""ProfilerMiddleware and Django's, in this process: switched off it is the app itself (Django's is
left out), a bad setting raises the line gunicorn prints, the kind of app is told apart, and a
request through each front end (WSGI, ASGI, Django's async path) leaves a report of its own work.
Real servers: tests/integration/test_middleware.py."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from gunicorn_pyinstrument import ProfilerMiddleware, middleware
from gunicorn_pyinstrument.helper.lock import held, hold
from gunicorn_pyinstrument.helper.process import helper_for
from gunicorn_pyinstrument.hooks import startup
from gunicorn_pyinstrument.middleware import (
    ASGIProfilerMiddleware,
    HelperKeeper,
    WSGIProfilerMiddleware,
    checked_settings,
)
from gunicorn_pyinstrument.settings import SettingError
from gunicorn_pyinstrument.worker import process_state

REPO = Path(__file__).resolve().parents[2]
PREFIX = "GUNICORN_PYINSTRUMENT"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """``env(DIR=..., FORMATS=...)``: exactly these settings (the switch on unless given), read
    afresh by the next middleware made; this process's profiling state forgotten before and after."""
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)

    def forget() -> None:
        process_state.close()
        monkeypatch.setattr(middleware, "_settings", None)
        monkeypatch.setattr(middleware, "_keep_up", None)
        monkeypatch.setattr(process_state, "_current", None)
        monkeypatch.setattr(process_state, "_hooks_pid", None)

    def set_env(**settings: str) -> None:
        forget()
        settings.setdefault("", "1")
        for suffix, value in settings.items():
            monkeypatch.setenv(f"{PREFIX}_{suffix}" if suffix else PREFIX, value)

    yield set_env
    forget()


def records(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.meta.json"))]


def functions(directory: Path, record: dict[str, Any]) -> set[str]:
    from pyinstrument.session import Session

    session = Session.load(str(directory / record["files"]["session"]))
    return {frame.split("\x00", 1)[0] for stack, _ in session.frame_records for frame in stack}


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(range(100))


def wsgi_marker_work() -> None:
    burn(0.03)


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    wsgi_marker_work()
    start_response("203 Non-Authoritative Information", [("Content-Type", "text/plain")])
    return [b"wsgi"]


async def asgi_marker_work() -> None:
    burn(0.03)
    await asyncio.sleep(0)


async def asgi_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.complete"})
        return
    await asgi_marker_work()
    await send({"type": "http.response.start", "status": 201, "headers": []})
    await send({"type": "http.response.body", "body": b"asgi"})


def call_asgi(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """One ASGI call on a fresh event loop; the messages the app sent."""
    sent: list[dict[str, Any]] = []
    received: list[str] = []

    async def receive() -> dict[str, Any]:
        if received:  # the request is in: only a disconnect could follow
            await asyncio.Event().wait()
        received.append(scope["type"])
        return {"type": "lifespan.startup"} if scope["type"] == "lifespan" else {"type": "http.request"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def http_scope(path: str) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": []}


# --- switched off, and bad settings ---


def test_switched_off_it_is_the_app_itself(env, tmp_path):
    env(**{"": "0", "DIR": str(tmp_path / "reports")})
    from fastapi import FastAPI

    fastapi_app = FastAPI()
    for app in (wsgi_app, asgi_app, fastapi_app):
        assert ProfilerMiddleware(app) is app
        assert WSGIProfilerMiddleware(app) is app
        assert ASGIProfilerMiddleware(app) is app
    assert not (tmp_path / "reports").exists()


def test_switched_off_nothing_of_the_profiler_is_imported():
    script = (
        "import json, sys\n"
        "from gunicorn_pyinstrument import ProfilerMiddleware\n"
        "app = lambda environ, start_response: []\n"
        "assert ProfilerMiddleware(app) is app\n"
        "print(json.dumps(sorted(n for n in sys.modules if n.startswith(('pyinstrument', "
        "'gunicorn_pyinstrument.worker', 'gunicorn_pyinstrument.helper', 'gunicorn_pyinstrument.hooks')))))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_the_config_module_imports_neither_middleware():
    script = (
        "import json, sys\n"
        "import gunicorn_pyinstrument, gunicorn_pyinstrument.config\n"
        "print(json.dumps([n for n in ('gunicorn_pyinstrument.middleware', 'gunicorn_pyinstrument.django', "
        "'django') if n in sys.modules]))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    env.update({PREFIX: "1", f"{PREFIX}_DIR": "/tmp/gunicorn-pyinstrument-unit-config-reports"})
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("switch", ["1", "0"])
def test_a_bad_setting_raises_the_line_gunicorn_prints(env, tmp_path, capsys, switch):
    env(**{"": switch, "DIR": str(tmp_path / "reports"), "SAMPLE_RATE": "2"})
    with pytest.raises(SystemExit):
        startup()
    printed = capsys.readouterr().err.strip()
    with pytest.raises(SettingError) as raised:
        ProfilerMiddleware(wsgi_app)
    assert printed == f"gunicorn-pyinstrument: error: {raised.value}"
    assert "\n" not in str(raised.value)


def test_a_directory_that_cannot_be_written_raises_one_line(env, tmp_path):
    (tmp_path / "file").write_text("")
    env(DIR=str(tmp_path / "file" / "reports"))
    with pytest.raises(SettingError, match=r"^GUNICORN_PYINSTRUMENT_DIR=.* is not valid \(cannot be created"):
        ProfilerMiddleware(wsgi_app)


# --- the kind of app, and one request through each front end ---


def test_wsgi_and_asgi_apps_are_told_apart(env, tmp_path, django_project):
    env(DIR=str(tmp_path), FORMATS="session")
    from django.core.handlers.asgi import ASGIHandler
    from fastapi import FastAPI

    assert type(ProfilerMiddleware(wsgi_app)) is WSGIProfilerMiddleware
    for app in (asgi_app, FastAPI(), ASGIHandler()):
        assert middleware.is_asgi(app)
    assert type(ProfilerMiddleware(asgi_app)) is ASGIProfilerMiddleware
    assert type(ProfilerMiddleware(FastAPI())) is ASGIProfilerMiddleware
    # Said explicitly for an app that looks like the other kind.
    assert type(ASGIProfilerMiddleware(wsgi_app)) is ASGIProfilerMiddleware
    once = ProfilerMiddleware(wsgi_app)
    assert ProfilerMiddleware(once) is once and once.app is wsgi_app


def test_a_wsgi_request_is_profiled_to_the_end_of_its_body(env, tmp_path):
    env(DIR=str(tmp_path), FORMATS="session")
    app = ProfilerMiddleware(wsgi_app)
    environ: dict[str, Any] = {"PATH_INFO": "/caf\xc3\xa9"}
    setup_testing_defaults(environ)
    statuses: list[str] = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    assert list(body) == [b"wsgi"]
    assert records(tmp_path) == []  # not before the server closes the body
    body.close()
    process_state.close()
    [record] = records(tmp_path)
    assert (record["path"], record["status"], record["worker"]["class"]) == ("/café", 203, "wsgi-middleware")
    assert record["pid"] == os.getpid() and record["duration"] >= 0.03
    assert "wsgi_marker_work" in functions(tmp_path, record)


def test_an_asgi_request_is_profiled_and_lifespan_passes_through(env, tmp_path):
    env(DIR=str(tmp_path), FORMATS="session")
    app = ProfilerMiddleware(asgi_app)
    assert call_asgi(app, {"type": "lifespan"}) == [{"type": "lifespan.startup.complete"}]
    assert process_state._current is None  # nothing made for a lifespan call
    sent = call_asgi(app, http_scope("/asgi"))
    assert sent[-1]["body"] == b"asgi"
    process_state.close()
    [record] = records(tmp_path)
    assert (record["path"], record["status"], record["worker"]["class"]) == ("/asgi", 201, "asgi-middleware")
    assert "asgi_marker_work" in functions(tmp_path, record)


def test_starlettes_add_middleware_makes_it_too(env, tmp_path):
    env(DIR=str(tmp_path), FORMATS="session")
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/added")
    async def added() -> dict[str, int]:
        await asgi_marker_work()
        return {"added": 1}

    app.add_middleware(ProfilerMiddleware)
    scope = {**http_scope("/added"), "scheme": "http", "server": ("test", 80), "root_path": ""}
    assert call_asgi(app, scope)[0]["status"] == 200
    process_state.close()
    [record] = records(tmp_path)
    assert (record["path"], record["worker"]["class"]) == ("/added", "asgi-middleware")
    assert "asgi_marker_work" in functions(tmp_path, record)


def test_under_gunicorns_hooks_the_middleware_steps_aside(env, tmp_path):
    env(DIR=str(tmp_path), FORMATS="session")
    app = ProfilerMiddleware(asgi_app)
    process_state.profiled_by_hooks()
    assert call_asgi(app, http_scope("/asgi"))[-1]["body"] == b"asgi"
    process_state.close()
    assert records(tmp_path) == []


# --- Django's middleware ---


@pytest.fixture
def django_project() -> Iterator[None]:
    """The settings of tests/apps/django_middleware_app.py, whatever Django was configured with."""
    import django
    from django.conf import settings
    from django.test.utils import override_settings

    from tests.apps import django_middleware_app as project

    if not settings.configured:
        settings.configure(SECRET_KEY=project.SECRET_KEY, INSTALLED_APPS=[], DATABASES={}, USE_TZ=True)
        django.setup()
    with override_settings(
        ALLOWED_HOSTS=["*"], ROOT_URLCONF=project.ROOT_URLCONF, MIDDLEWARE=project.MIDDLEWARE, DEBUG=False
    ):
        yield


def test_django_switched_off_is_left_out(env, tmp_path, django_project):
    from django.core.exceptions import MiddlewareNotUsed

    from gunicorn_pyinstrument.django import ProfilerMiddleware as DjangoMiddleware

    env(**{"": "0", "DIR": str(tmp_path / "reports")})
    with pytest.raises(MiddlewareNotUsed):
        DjangoMiddleware(lambda request: None)
    env(DIR=str(tmp_path / "reports"), SAMPLE_RATE="2")
    with pytest.raises(SettingError, match="SAMPLE_RATE='2' is not valid"):
        DjangoMiddleware(lambda request: None)


def test_django_async_path_profiles_an_async_view(env, tmp_path, django_project):
    env(DIR=str(tmp_path), FORMATS="session")
    from django.core.handlers.asgi import ASGIHandler

    sent = call_asgi(ASGIHandler(), {**http_scope("/async"), "query_string": b"s=0.05"})
    assert (sent[0]["status"], sent[-1].get("body")) == (200, b"async")
    process_state.close()
    [record] = records(tmp_path)
    assert (record["path"], record["status"], record["worker"]["class"]) == (
        "/async",
        200,
        "django-middleware",
    )
    assert "async_work" in functions(tmp_path, record)


# --- the helper process ---


def test_a_helper_is_started_only_when_none_serves_the_directory(env, tmp_path):
    env(DIR=str(tmp_path), FORMATS="session,html")
    settings = checked_settings()
    assert isinstance(middleware.keep_up(), HelperKeeper)
    other = hold(str(tmp_path))  # another process's helper
    assert other is not None
    helper = helper_for(settings, exclusive=True)
    assert helper is not None
    keeper = HelperKeeper(helper)
    keeper()
    assert helper.pid is None
    os.close(other)
    keeper()
    try:
        deadline = time.monotonic() + 10
        while not held(str(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert held(str(tmp_path)) and helper.running()
    finally:
        assert helper.stop(10)


def test_no_helper_for_sessions_alone(env, tmp_path):
    env(DIR=str(tmp_path), FORMATS="session")
    checked_settings()
    assert middleware.keep_up() is None


def test_no_helper_is_started_from_an_interpreter_that_is_not_python(env, tmp_path, monkeypatch):
    env(DIR=str(tmp_path), FORMATS="session,html")
    settings = checked_settings()
    helper = helper_for(settings, exclusive=True)
    assert helper is not None
    monkeypatch.setattr(sys, "executable", "/usr/local/bin/uwsgi")
    with pytest.raises(RuntimeError, match="is not a Python interpreter; run `python -m"):
        HelperKeeper(helper)()
    assert helper.pid is None and not held(str(tmp_path))
