"""A gevent setup with profiling: each request is a greenlet, isolated in its own report.

    GUNICORN_PYINSTRUMENT=1 gunicorn -c sample_configs/gevent_config.py sample_configs.flask_app:app

The plugin imports pyinstrument in post_fork, before the gevent worker monkey-patches threading,
and profiles in pyinstrument's strict mode, so concurrent greenlets stay out of each other's
reports; the time a request spends switched out shows as [out-of-context] at its root.
Do not call gevent.monkey.patch_all() in this file: the worker does it (if a config must, the
plugin repairs pyinstrument's thread-local state, but importing gevent in the master is best avoided).
"""

bind = "127.0.0.1:8000"
worker_class = "gevent"
workers = 2
worker_connections = 100
timeout = 30

# Last line: add profiling, switched by GUNICORN_PYINSTRUMENT (the linter comments are for this repository).
from gunicorn_pyinstrument import install; install(globals())  # noqa: E402, E702, I001  # fmt: skip
