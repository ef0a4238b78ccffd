"""A typical gunicorn config of an existing project, with profiling added by its last line.

    gunicorn -c sample_configs/existing_config.py sample_configs.flask_app:app    # as usual
    GUNICORN_PYINSTRUMENT=1 gunicorn -c sample_configs/existing_config.py sample_configs.flask_app:app

With GUNICORN_PYINSTRUMENT off (the default) the last line adds nothing, and this file behaves
exactly as it did before. With it on, the profiling hooks are chained with the hooks below: yours
run first on the way in (post_fork, pre_request) and last on the way out (post_request), so a
report covers the app and not these hooks. An exception in one of your hooks still reaches
gunicorn as before.
"""

import os
import time

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 1
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 1000
max_requests_jitter = 100
accesslog = "-"
loglevel = "info"
proc_name = "sample-app"


def post_fork(server, worker):
    server.log.info("worker %s forked (age %s)", worker.pid, worker.age)


def pre_request(worker, req):
    worker.log.debug("%s %s", req.method, req.path)
    # Kept on the worker: a sync worker serves one request at a time.
    worker.request_started = time.perf_counter()


def post_request(worker, req, environ, resp):
    elapsed = time.perf_counter() - getattr(worker, "request_started", time.perf_counter())
    if elapsed > 1.0:
        worker.log.warning("slow request: %s %s took %.2fs", req.method, req.path, elapsed)


# Last line: add profiling, switched by GUNICORN_PYINSTRUMENT (the linter comments are for this repository).
from gunicorn_pyinstrument import install; install(globals())  # noqa: E402, E702, I001  # fmt: skip
