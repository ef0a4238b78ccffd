"""gunicorn's own asgi worker (``-k asgi``) with a FastAPI app: the plugin wraps the ASGI app and
profiles each HTTP request, an asyncio task, in strict mode; lifespan and WebSocket pass through."""

from __future__ import annotations

from support import (
    ASGI_WORKER_LACKS,
    ASGI_WORKER_TESTED,
    CONFIG_FILE,
    ENV_PREFIX,
    needs_gunicorn,
    profiling_env,
)

from .worker_checks import (
    ASGI_ANSWERS,
    check_concurrent_requests_errors_and_streams,
    check_lifespan_websocket_and_sync_routes,
    check_plugin_off_changes_nothing,
    check_token_trigger,
)

pytestmark = needs_gunicorn(ASGI_WORKER_TESTED, ASGI_WORKER_LACKS)

FASTAPI_APP = "tests.apps.fastapi_app:app"
WORKER = ["-k", "asgi", "-w", "1"]
WORKER_CLASS = "ASGIWorker"
TOKEN = "asgi-token-0123456789"


def test_concurrent_requests_errors_and_streams(gunicorn, report_dir):
    server = gunicorn(
        "-c", CONFIG_FILE, *WORKER, FASTAPI_APP, env=profiling_env(report_dir, FORMATS="session")
    )
    check_concurrent_requests_errors_and_streams(server, report_dir, WORKER_CLASS, ASGI_ANSWERS)


def test_token_trigger(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session", TOKEN=TOKEN, SAMPLE_RATE="0")
    server = gunicorn("-c", CONFIG_FILE, *WORKER, FASTAPI_APP, env=env)
    check_token_trigger(server, report_dir, TOKEN, WORKER_CLASS, ASGI_ANSWERS)


def test_lifespan_websocket_and_sync_routes(gunicorn, report_dir):
    server = gunicorn(
        "-c", CONFIG_FILE, *WORKER, FASTAPI_APP, env=profiling_env(report_dir, FORMATS="session")
    )
    check_lifespan_websocket_and_sync_routes(server, report_dir, WORKER_CLASS)


def test_plugin_off_changes_nothing(gunicorn, tmp_path):
    reports = tmp_path / "not-created"
    server = gunicorn("-c", CONFIG_FILE, *WORKER, FASTAPI_APP, env={f"{ENV_PREFIX}_DIR": str(reports)})
    check_plugin_off_changes_nothing(server, reports)
