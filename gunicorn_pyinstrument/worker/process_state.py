"""A process's profiling state under the middleware: made on its first request, made again after a
fork.

Under gunicorn's hooks each worker makes its RequestMode in ``post_worker_init``. The middleware
(``middleware.py``, ``django.py``) has no such moment: servers load the app and then fork workers
(gunicorn without the hooks, uWSGI), spawn them (uvicorn ``--workers``) or serve from one process
(waitress, the development servers). So a process's RequestMode, with its engine, writer thread
and worker identity, is made here on the first request the process serves, and made again when
the pid is no longer the one it was made in: nothing of one process's state is used in another.
What is still queued is written when the interpreter exits.

Under gunicorn with the plugin's hooks, the hooks mark each worker they profile
(:func:`profiled_by_hooks`) and the middleware steps aside there: a request is profiled once.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

from ..settings import Settings
from .classes import WRAP_ASGI, WRAP_WSGI, WorkerClass
from .engines.pyinstrument import prepare_import
from .request_mode import RequestMode, make_engine

#: What each middleware records as the worker class of its reports, and how its requests run: on a
#: thread each (WSGI servers, Django under WSGI), or many on one event loop (ASGI).
WSGI_MIDDLEWARE = WorkerClass("wsgi-middleware", (), WRAP_WSGI)
ASGI_MIDDLEWARE = WorkerClass("asgi-middleware", (), WRAP_ASGI, shares_thread=True)
DJANGO_MIDDLEWARE = WorkerClass("django-middleware", (), WRAP_WSGI)
DJANGO_ASYNC_MIDDLEWARE = WorkerClass("django-middleware", (), WRAP_ASGI, shares_thread=True)

#: How often a process runs ``keep_up`` again after its first request (a look at the helper).
KEEP_UP_SECONDS = 30.0
#: The logger of the middleware's problems (gunicorn's, ``gunicorn.error``, is not there).
LOGGER = "gunicorn_pyinstrument"


@dataclasses.dataclass
class _Process:
    pid: int
    modes: dict[WorkerClass, RequestMode] = dataclasses.field(default_factory=dict)
    next_keep_up: float = float("-inf")


_hooks_pid: int | None = None
_current: _Process | None = None
_lock = threading.Lock()
_exit_registered = False


def profiled_by_hooks() -> None:
    """The plugin's hooks profile this worker's requests: the middleware steps aside in it."""
    global _hooks_pid
    _hooks_pid = os.getpid()


def request_mode(
    settings: Settings, front_end: WorkerClass, keep_up: Callable[[], None] | None = None
) -> RequestMode | None:
    """This process's RequestMode for a middleware, made on first use; None where the plugin's
    hooks profile the requests. ``keep_up`` runs on the first request of each process and again
    every KEEP_UP_SECONDS, on a request's way in; it must be quick, and a problem in it is logged."""
    pid = os.getpid()
    if pid == _hooks_pid:
        return None
    process = _current
    if process is None or process.pid != pid:
        process = _start(pid)
    mode = process.modes.get(front_end) or _make(process, settings, front_end)
    if keep_up is not None:
        now = time.monotonic()
        if now >= process.next_keep_up:
            process.next_keep_up = now + KEEP_UP_SECONDS
            try:
                keep_up()
            except Exception:
                mode.log.error("keep-up", "could not start the helper process")
    return mode


def _start(pid: int) -> _Process:
    global _current, _exit_registered
    with _lock:
        if _current is None or _current.pid != pid:
            # A parent's modes are left behind: their writer threads do not exist in this process,
            # and the parent writes what it queued.
            prepare_import()
            _current = _Process(pid)
            if not _exit_registered:
                atexit.register(close)
                _exit_registered = True
        return _current


def _make(process: _Process, settings: Settings, front_end: WorkerClass) -> RequestMode:
    with _lock:
        mode = process.modes.get(front_end)
        if mode is not None:
            return mode
        facts = on_greenlets(front_end) if not front_end.shares_thread and _patched_by_gevent() else front_end
        stand_in = SimpleNamespace(log=logging.getLogger(LOGGER))
        mode = RequestMode(settings, stand_in, make_engine(settings, None, facts))
        mode.identity = dataclasses.replace(mode.identity, worker_class=front_end.name)
        mode.hooks_enabled = False
        if settings.mode == "worker" and not process.modes:
            mode.log.warning(
                "mode", "per-worker mode needs gunicorn's hooks: the middleware profiles requests one by one"
            )
        process.modes[front_end] = mode
        return mode


def on_greenlets(front_end: WorkerClass) -> WorkerClass:
    """Under gevent's monkey-patching, a WSGI server's requests are greenlets sharing a thread."""
    return dataclasses.replace(front_end, shares_thread=True, greenlets=True)


def _patched_by_gevent() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("threading"))


def close() -> None:
    """Write what this process still has queued (its writer threads are daemons); at exit."""
    process = _current
    if process is None or process.pid != os.getpid():
        return
    for mode in list(process.modes.values()):
        mode.close()


def _after_fork_in_child() -> None:
    # A lock some other thread of the parent held at the fork would stay held here for ever.
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
