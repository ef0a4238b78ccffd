"""The tornado worker, serving a WSGI app: tornado never calls gunicorn's request hooks, so the
plugin wraps the WSGI app. tornado's WSGIContainer runs it on the IOLoop thread, so requests
may be serialized; each report must hold its own request only anyway."""

from __future__ import annotations

from support import CONFIG_FILE, profiling_env

from .worker_checks import WSGI_ANSWERS, check_concurrent_requests_errors_and_streams, check_token_trigger

APP = "tests.apps.streaming_app:app"  # tests.apps.interleaved_app plus /stream
WORKER = ["-k", "tornado", "-w", "1"]
WORKER_CLASS = "TornadoWorker"
TOKEN = "tornado-token-0123456789"


def test_concurrent_requests_errors_and_streams(gunicorn, report_dir):
    server = gunicorn("-c", CONFIG_FILE, *WORKER, APP, env=profiling_env(report_dir, FORMATS="session"))
    # tornado's WSGIContainer sends no response at all when a WSGI app raises (with or without the
    # plugin): the client gives up; the report still says 500, what other servers answer. The
    # requests may run one after the other, so they need not overlap.
    check_concurrent_requests_errors_and_streams(
        server, report_dir, WORKER_CLASS, WSGI_ANSWERS, error_answered=False, overlapping=False
    )


def test_token_trigger(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session", TOKEN=TOKEN, SAMPLE_RATE="0")
    server = gunicorn("-c", CONFIG_FILE, *WORKER, APP, env=env)
    check_token_trigger(server, report_dir, TOKEN, WORKER_CLASS, WSGI_ANSWERS)
