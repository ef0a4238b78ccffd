"""UvicornWorker, from uvicorn-worker and from uvicorn itself (deprecated there), with a FastAPI app:
uvicorn never calls gunicorn's request hooks, so the plugin wraps the ASGI app and profiles each
HTTP request, an asyncio task, in strict mode; lifespan and WebSocket pass through."""

from __future__ import annotations

import pytest
from support import CONFIG_FILE, ENV_PREFIX, profiling_env

from .worker_checks import (
    ASGI_ANSWERS,
    check_concurrent_requests_errors_and_streams,
    check_lifespan_websocket_and_sync_routes,
    check_plugin_off_changes_nothing,
    check_token_trigger,
)

FASTAPI_APP = "tests.apps.fastapi_app:app"
WORKER_CLASS = "UvicornWorker"
TOKEN = "uvicorn-token-0123456789"
UVICORN_WORKERS = ["uvicorn_worker.UvicornWorker", "uvicorn.workers.UvicornWorker"]


@pytest.fixture(params=UVICORN_WORKERS)
def worker(request) -> list[str]:
    return ["-k", request.param, "-w", "1"]


def test_concurrent_requests_errors_and_streams(gunicorn, report_dir, worker):
    server = gunicorn(
        "-c", CONFIG_FILE, *worker, FASTAPI_APP, env=profiling_env(report_dir, FORMATS="session")
    )
    check_concurrent_requests_errors_and_streams(server, report_dir, WORKER_CLASS, ASGI_ANSWERS)


def test_token_trigger(gunicorn, report_dir, worker):
    env = profiling_env(report_dir, FORMATS="session", TOKEN=TOKEN, SAMPLE_RATE="0")
    server = gunicorn("-c", CONFIG_FILE, *worker, FASTAPI_APP, env=env)
    check_token_trigger(server, report_dir, TOKEN, WORKER_CLASS, ASGI_ANSWERS)


def test_lifespan_websocket_and_sync_routes(gunicorn, report_dir, worker):
    server = gunicorn(
        "-c", CONFIG_FILE, *worker, FASTAPI_APP, env=profiling_env(report_dir, FORMATS="session")
    )
    check_lifespan_websocket_and_sync_routes(server, report_dir, WORKER_CLASS)


def test_plugin_off_changes_nothing(gunicorn, tmp_path, worker):
    reports = tmp_path / "not-created"
    server = gunicorn("-c", CONFIG_FILE, *worker, FASTAPI_APP, env={f"{ENV_PREFIX}_DIR": str(reports)})
    check_plugin_off_changes_nothing(server, reports)
