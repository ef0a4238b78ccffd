"""The gunicorn hook functions: what the plugin does in the master and in each worker.

Which hook does what, and in which process:

============================  =======  ====================================================
hook                          process  what it does
============================  =======  ====================================================
``when_ready(server)``        master   starts the helper process (when a format other than
                                       ``session``, retention or an upload is configured)
``pre_fork(server, worker)``  master   restarts the helper if it died
``post_fork(server, worker)`` worker   imports pyinstrument, in the worker, before gevent
                                       patches threading
``post_worker_init(worker)``  worker   creates the worker's RequestMode (or WorkerMode); wraps
                                       the app for workers that never call the request hooks
                                       (``worker/wrappers.py``)
``pre_request(worker, req)``  worker   decides whether to profile; if so starts a profiler
``post_request(worker, req,   worker   stops it, hands the session to the writer thread
environ, resp)``
``worker_abort(worker)``      worker   on a timeout, writes every in-flight profile at once
``worker_exit(server,         worker   flushes the writer (guarded: gunicorn may call this
worker)``                              hook in the master too)
``on_exit(server)``           master   lets the helper finish pending jobs
============================  =======  ====================================================

Every hook body is guarded: a problem is logged through gunicorn's logger and the hook returns
normally, because a raising post_fork stops the whole server and a raising pre_request fails
the request. Hooks are thin; the logic lives in ``worker/`` (request mode, worker mode, writer) and
``helper/``. ``chaining.py`` puts them into a gunicorn config, chained with the user's own hooks.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable, MutableMapping
from typing import Any

from .helper.process import HelperProcess, helper_for
from .logs import PREFIX, ThrottledLog, fallback_logger
from .settings import SettingError, Settings, declarations, load
from .stores.local import ensure_directory
from .stores.s3 import INSTALL_HINT, boto3_available
from .worker.classes import WRAP_ASGI, facts_of
from .worker.engines.pyinstrument import prepare_import
from .worker.process_state import profiled_by_hooks
from .worker.request_mode import RequestMode
from .worker.worker_mode import WorkerMode
from .worker.wrappers import UNSUPPORTED, TickingASGI, attach
from .worker.writer import Writer

HELPER_STOP_SECONDS = 10.0


class _State:
    settings: Settings | None = None
    request_mode: RequestMode | None = None
    worker_mode: WorkerMode | None = None
    helper: HelperProcess | None = None
    master_log: ThrottledLog | None = None


_state = _State()


def startup(environ: MutableMapping[str, str] | None = None) -> Settings:
    """Read and validate every setting, in the master, once per config load.

    A bad value stops gunicorn here with one line on stderr and exit status 2.
    """
    try:
        settings = load(environ)
        if settings.enabled:
            prepare_directory(settings)
            prepare_upload(settings)
    except SettingError as exc:
        print(f"{PREFIX}error: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    _state.settings = settings
    return settings


def prepare_directory(settings: Settings) -> None:
    """Create the output directory and prove it is writable; SettingError if not."""
    decl = dict(declarations())["dir"]
    try:
        ensure_directory(settings.dir, settings.file_mode)
        if not os.path.isdir(settings.dir):
            raise OSError("not a directory")
        if not os.access(settings.dir, os.W_OK | os.X_OK):
            raise OSError("not writable")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise SettingError(
            f"{decl.env}={settings.dir!r} is not valid (cannot be created or written: {reason}): "
            f"expected {decl.accepted}"
        ) from None


def prepare_upload(settings: Settings) -> None:
    """Uploads need boto3: say so now, in one line, rather than in the helper process's log.
    The store is not contacted: a store that is down must not stop gunicorn from starting."""
    if settings.upload is not None and not boto3_available():
        env = dict(declarations())["upload"].env
        raise SettingError(
            f"{env}={str(settings.upload)!r} needs boto3, which is not installed: {INSTALL_HINT}"
        )


def _log_of(obj: Any) -> Any:
    return getattr(obj, "log", None) or fallback_logger()


def _guarded(func: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(func)
    def hook(*args: Any) -> None:
        try:
            func(*args)
        except Exception:
            with contextlib.suppress(Exception):
                _log_of(args[0]).exception(f"{PREFIX}error in {func.__name__} (ignored)")

    return hook


# --- the hooks (exact arity; the bodies stay thin) ---


@_guarded
def when_ready(server: Any) -> None:
    settings = _state.settings
    if settings is None or not settings.enabled:
        return
    _state.helper = helper_for(settings)
    if _state.helper is not None:
        _state.helper.start()
    what = (
        f"whole workers, a window every {settings.flush_interval:g}s"
        if settings.mode == "worker"
        else f"requests (sample rate {settings.sample_rate:g})"
    )
    upload = settings.upload
    where = settings.dir if upload is None else f"{upload} (spooled in {settings.dir})"
    server.log.info(f"{PREFIX}profiling {what} into {where} as {','.join(settings.formats)}")


@_guarded
def pre_fork(server: Any, worker: Any) -> None:
    helper = _state.helper
    if helper is not None and helper.ensure_running():
        if _state.master_log is None:
            _state.master_log = ThrottledLog(server.log)
        _state.master_log.warning("helper", "the helper process had stopped; restarted it")


@_guarded
def post_fork(server: Any, worker: Any) -> None:
    _state.helper = None  # the master's handle means nothing in a worker
    settings = _state.settings
    if settings is not None and settings.enabled:
        prepare_import()


@_guarded
def post_worker_init(worker: Any) -> None:
    settings = _state.settings
    if settings is None or not settings.enabled:
        return
    profiled_by_hooks()  # a ProfilerMiddleware around the app steps aside in this worker
    # Created here, after gevent has patched (queues and locks are then of the right kind).
    if settings.mode == "worker":
        _start_worker_mode(worker, settings)
    else:
        _start_request_mode(worker, settings)


def _start_request_mode(worker: Any, settings: Settings) -> None:
    request_mode = _state.request_mode = RequestMode(settings, worker)
    front_end = attach(worker, request_mode)
    if front_end == UNSUPPORTED:
        worker.log.warning(f"{PREFIX}{type(worker).__name__} serves a native tornado app: not profiled")
    if front_end == WRAP_ASGI:
        _stand_down_request_hooks(worker)
    _catch_signals(worker, request_mode.abort, request_mode.close)


def _start_worker_mode(worker: Any, settings: Settings) -> None:
    log = ThrottledLog(worker.log)
    writer = Writer(
        settings.dir, settings.file_mode, settings.queue_size, log, bounded=settings.upload is not None
    )
    worker_mode = _state.worker_mode = WorkerMode(settings, worker, writer, log)
    worker_mode.tick()  # opens the first window when the gate is open
    heartbeat = worker.notify

    def notify() -> None:
        heartbeat()
        worker_mode.tick()

    worker.notify = notify
    if not worker_mode.per_request:
        _stand_down_request_hooks(worker)
    _catch_signals(worker, worker_mode.abort, worker_mode.close)
    if facts_of(worker).sparse_heartbeat:
        worker.wsgi = TickingASGI(worker.wsgi, worker_mode.tick)  # UvicornWorker's app is in .wsgi


def _catch_signals(worker: Any, abort: Callable[[], object], close: Callable[[], object]) -> None:
    """Where the worker class needs it (``worker/classes.py``): a timeout caught as SIGABRT, an
    exit without worker_exit caught as SIGTERM."""
    facts = facts_of(worker)
    if facts.abort_by_signal:
        _run_before_signal(signal.SIGABRT, abort)
    if facts.exits_without_worker_exit:
        _run_before_signal(signal.SIGTERM, close)


def _stand_down_request_hooks(worker: Any) -> None:
    """With the app wrapped, gunicorn's asgi worker need not call our request hooks; resetting
    an unchained hook to gunicorn's default keeps its keep-alive behaviour unchanged."""
    settings = getattr(worker.cfg, "settings", {})
    for name, ours in (("pre_request", pre_request), ("post_request", post_request)):
        setting = settings.get(name)
        if setting is not None and setting.get() is ours:
            setting.set(setting.default)


def _run_before_signal(signum: int, action: Callable[[], object]) -> None:
    """Run ``action`` when the signal arrives, then do what was there before (including dying
    by the signal, so the master sees the same exit)."""
    previous = signal.getsignal(signum)

    def handler(sig: int, frame: Any) -> None:
        try:
            action()
        except Exception:
            fallback_logger().exception(f"{PREFIX}error handling signal {sig}")
        if callable(previous):
            previous(sig, frame)
        elif previous == signal.SIG_DFL:
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)

    signal.signal(signum, handler)


def pre_request(worker: Any, req: Any) -> None:
    request_mode = _state.request_mode
    if request_mode is not None:
        request_mode.request_started(req)  # guards itself
    elif _state.worker_mode is not None:
        _state.worker_mode.request_started()  # guards itself


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    request_mode = _state.request_mode
    if request_mode is not None:
        request_mode.request_finished(req, resp)  # guards itself
    elif _state.worker_mode is not None:
        _state.worker_mode.request_finished()  # guards itself


@_guarded
def worker_abort(worker: Any) -> None:
    if _state.worker_mode is not None:
        _state.worker_mode.abort()
    request_mode = _state.request_mode
    if request_mode is not None:
        written = request_mode.abort()
        if written:
            worker.log.warning(f"{PREFIX}wrote {written} profile(s) of timed-out request(s)")


@_guarded
def worker_exit(server: Any, worker: Any) -> None:
    if os.getpid() != getattr(worker, "pid", None):
        return  # gunicorn may call this hook in the master too
    if _state.worker_mode is not None:
        _state.worker_mode.close()
    if _state.request_mode is not None:
        _state.request_mode.close()


@_guarded
def on_exit(server: Any) -> None:
    helper = _state.helper
    if helper is not None and not helper.stop(HELPER_STOP_SECONDS):
        server.log.warning(
            f"{PREFIX}the helper (pid {helper.pid}) is still rendering; it exits when it is done"
        )


OUR_HOOKS: dict[str, Callable[..., None]] = {
    "when_ready": when_ready,
    "pre_fork": pre_fork,
    "post_fork": post_fork,
    "post_worker_init": post_worker_init,
    "pre_request": pre_request,
    "post_request": post_request,
    "worker_abort": worker_abort,
    "worker_exit": worker_exit,
    "on_exit": on_exit,
}
