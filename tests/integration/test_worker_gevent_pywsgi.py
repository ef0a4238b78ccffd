"""The gevent_pywsgi worker: gevent's own pywsgi server never calls gunicorn's request hooks, so the
plugin wraps the WSGI app; requests interleave as greenlets and are profiled in strict mode."""

from __future__ import annotations

from support import CONFIG_FILE, profiling_env

from .worker_checks import WSGI_ANSWERS, check_concurrent_requests_errors_and_streams, check_token_trigger

APP = "tests.apps.streaming_app:app"  # tests.apps.interleaved_app plus /stream
WORKER = ["-k", "gevent_pywsgi", "--worker-connections", "50", "-w", "1"]
WORKER_CLASS = "GeventPyWSGIWorker"
TOKEN = "pywsgi-token-0123456789"


def test_concurrent_requests_errors_and_streams(gunicorn, report_dir):
    server = gunicorn("-c", CONFIG_FILE, *WORKER, APP, env=profiling_env(report_dir, FORMATS="session"))
    check_concurrent_requests_errors_and_streams(server, report_dir, WORKER_CLASS, WSGI_ANSWERS)


def test_token_trigger(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session", TOKEN=TOKEN, SAMPLE_RATE="0")
    server = gunicorn("-c", CONFIG_FILE, *WORKER, APP, env=env)
    check_token_trigger(server, report_dir, TOKEN, WORKER_CLASS, WSGI_ANSWERS)
