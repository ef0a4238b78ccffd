"""The gunicorn hook functions, and chaining them with a user's own hooks.

Which hook does what, and in which process:

============================  =======  ====================================================
hook                          process  what it does
============================  =======  ====================================================
``when_ready(server)``        master   starts the renderer process (when a format other than
                                       ``session``, retention or an upload is configured)
``pre_fork(server, worker)``  master   restarts the renderer if it died
``post_fork(server, worker)`` worker   imports pyinstrument, in the worker, before gevent
                                       patches threading
``post_worker_init(worker)``  worker   creates the worker's Agent; wraps the app for workers
                                       that never call the request hooks (``wrappers.py``)
``pre_request(worker, req)``  worker   decides whether to profile; if so starts a profiler
``post_request(worker, req,   worker   stops it, hands the session to the writer thread
environ, resp)``
``worker_abort(worker)``      worker   on a timeout, writes every in-flight profile at once
``worker_exit(server,         worker   flushes the writer (guarded: gunicorn may call this
worker)``                              hook in the master too)
``on_exit(server)``           master   lets the renderer finish pending jobs
============================  =======  ====================================================

Every hook body is guarded: a problem is logged through gunicorn's logger and the hook returns
normally, because a raising post_fork stops the whole server and a raising pre_request fails
the request. Hooks are thin; the logic lives in ``agent.py``, ``writer.py`` and ``renderer.py``.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import inspect
import os
import signal
import sys
import traceback
from collections.abc import Callable, MutableMapping
from typing import Any

from .agent import Agent
from .continuous import WorkerProfiler
from .engines.pyinstrument import prepare_import
from .logs import PREFIX, ThrottledLog, fallback_logger
from .renderer import RendererProcess, Retention, Upload
from .settings import SettingError, Settings, load, prepare_directory, prepare_upload
from .wrappers import UNSUPPORTED, WRAP_ASGI, TickingASGI, attach, front_end_for
from .writer import Writer

#: Our hooks and the arity gunicorn checks for each.
HOOK_ARITY: dict[str, int] = {
    "when_ready": 1,
    "pre_fork": 2,
    "post_fork": 2,
    "post_worker_init": 1,
    "pre_request": 2,
    "post_request": 4,
    "worker_abort": 1,
    "worker_exit": 2,
    "on_exit": 1,
}

#: Our hooks nest inside the user's: on the way in (start-up, request start) the user's hook runs
#: first, on the way out (request end, exit) ours runs first. So a report covers the app and not the
#: user's own request hooks, and our exit work is not delayed by theirs.
OURS_FIRST = frozenset({"post_request", "worker_exit", "on_exit", "worker_abort", "worker_int", "child_exit"})

RENDERER_STOP_SECONDS = 10.0


class _State:
    settings: Settings | None = None
    agent: Agent | None = None  # request mode, in a worker
    window: WorkerProfiler | None = None  # worker mode, in a worker
    renderer: RendererProcess | None = None
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
    upload = None
    if settings.upload is not None:
        upload = Upload(str(settings.upload), settings.s3_endpoint_url, settings.spool_max_bytes)
    if settings.rendered_formats or settings.retention or upload is not None:
        retention = Retention(settings.max_reports, settings.max_bytes)
        _state.renderer = RendererProcess(settings.dir, retention, upload)
        _state.renderer.start()
    what = (
        f"whole workers, a window every {settings.flush_interval:g}s"
        if settings.mode == "worker"
        else f"requests (sample rate {settings.sample_rate:g})"
    )
    where = settings.dir if upload is None else f"{upload.url} (spooled in {settings.dir})"
    server.log.info(f"{PREFIX}profiling {what} into {where} as {','.join(settings.formats)}")


@_guarded
def pre_fork(server: Any, worker: Any) -> None:
    renderer = _state.renderer
    if renderer is not None and renderer.ensure_running():
        if _state.master_log is None:
            _state.master_log = ThrottledLog(server.log)
        _state.master_log.warning("renderer", "the renderer process had stopped; restarted it")


@_guarded
def post_fork(server: Any, worker: Any) -> None:
    _state.renderer = None  # the master's handle means nothing in a worker
    settings = _state.settings
    if settings is not None and settings.enabled:
        prepare_import()


@_guarded
def post_worker_init(worker: Any) -> None:
    settings = _state.settings
    if settings is None or not settings.enabled:
        return
    # Created here, after gevent has patched (queues and locks are then of the right kind).
    if settings.mode == "worker":
        _start_worker_mode(worker, settings)
    else:
        _start_request_mode(worker, settings)


def _start_request_mode(worker: Any, settings: Settings) -> None:
    agent = _state.agent = Agent(settings, worker)
    front_end = attach(worker, agent)
    if front_end == UNSUPPORTED:
        worker.log.warning(f"{PREFIX}{type(worker).__name__} serves a native tornado app: not profiled")
    if front_end == WRAP_ASGI:
        _stand_down_request_hooks(worker)
        # Neither worker runs worker_abort when its event loop is blocked, and UvicornWorker dies
        # from SIGABRT or SIGTERM without worker_exit: catch the signals themselves.
        _run_before_signal(signal.SIGABRT, agent.abort)
        if not hasattr(worker, "asgi"):
            _run_before_signal(signal.SIGTERM, agent.close)


def _start_worker_mode(worker: Any, settings: Settings) -> None:
    log = ThrottledLog(worker.log)
    writer = Writer(
        settings.dir, settings.file_mode, settings.queue_size, log, bounded=settings.upload is not None
    )
    window = _state.window = WorkerProfiler(settings, worker, writer, log)
    window.tick()  # opens the first window when the gate is open
    heartbeat = worker.notify

    def notify() -> None:
        heartbeat()
        window.tick()

    worker.notify = notify
    if not window.per_request:
        _stand_down_request_hooks(worker)
    if front_end_for(worker) == WRAP_ASGI:
        _run_before_signal(signal.SIGABRT, window.abort)
        if not hasattr(worker, "asgi"):
            _run_before_signal(signal.SIGTERM, window.close)
            # UvicornWorker (its app is in worker.wsgi) beats only every --timeout/2 seconds.
            worker.wsgi = TickingASGI(worker.wsgi, window.tick)


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
    agent = _state.agent
    if agent is not None:
        agent.request_started(req)  # guards itself
    elif _state.window is not None:
        _state.window.request_started()  # guards itself


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    agent = _state.agent
    if agent is not None:
        agent.request_finished(req, resp)  # guards itself
    elif _state.window is not None:
        _state.window.request_finished()  # guards itself


@_guarded
def worker_abort(worker: Any) -> None:
    if _state.window is not None:
        _state.window.abort()
    agent = _state.agent
    if agent is not None:
        written = agent.abort()
        if written:
            worker.log.warning(f"{PREFIX}wrote {written} profile(s) of timed-out request(s)")


@_guarded
def worker_exit(server: Any, worker: Any) -> None:
    if os.getpid() != getattr(worker, "pid", None):
        return  # gunicorn may call this hook in the master too
    if _state.window is not None:
        _state.window.close()
    if _state.agent is not None:
        _state.agent.close()


@_guarded
def on_exit(server: Any) -> None:
    renderer = _state.renderer
    if renderer is not None and not renderer.stop(RENDERER_STOP_SECONDS):
        server.log.warning(
            f"{PREFIX}the renderer (pid {renderer.pid}) is still rendering; it exits when it is done"
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


# --- chaining with a user's hooks ---


def _resolve(hook: Any) -> Callable[..., Any]:
    """A hook may be given as a dotted string, as gunicorn allows."""
    resolved: object = hook
    if isinstance(hook, str):
        module, _, attr = hook.rpartition(".")
        resolved = getattr(importlib.import_module(module), attr)
    if not callable(resolved):
        raise TypeError(f"hook {hook!r} is not callable")
    return resolved


def _positional_arity(func: Callable[..., Any]) -> int:
    params = inspect.signature(func).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(1 for p in params if p.kind in kinds)


def chain(name: str, theirs: Any, ours: Callable[..., None]) -> Callable[..., None]:
    """One hook that runs both. An exception in theirs does not stop ours; it is re-raised
    afterwards, so gunicorn treats their hook exactly as it would without the plugin."""
    their_hook = _resolve(theirs)
    # Refuse what gunicorn would refuse. post_request may take 2, 3 or 4 arguments; call theirs
    # with what it takes.
    their_arity = _positional_arity(their_hook)
    accepted = (2, 3, 4) if name == "post_request" else (HOOK_ARITY[name],)
    if their_arity not in accepted:
        raise TypeError(f"Invalid value for {name}: Value must have an arity of: {accepted[-1]}")
    ours_first = name in OURS_FIRST

    def chained(*args: Any) -> None:
        if ours_first:
            ours(*args)
        try:
            their_hook(*args[:their_arity])
        finally:
            if not ours_first:
                ours(*args)

    chained.__name__ = chained.__qualname__ = name
    chained.__doc__ = f"gunicorn-pyinstrument's {name} chained with {getattr(their_hook, '__name__', name)}"
    # gunicorn checks the arity with inspect.signature, which reads __signature__.
    chained.__signature__ = inspect.signature(ours)  # type: ignore[attr-defined]
    chained._gunicorn_pyinstrument = True  # type: ignore[attr-defined]
    return chained


def install(namespace: MutableMapping[str, Any], settings: Settings | None = None) -> list[str]:
    """Put our hooks into a gunicorn config namespace, chained with any hook already there.

    Call it last in your config file, after your own hooks::

        from gunicorn_pyinstrument import install; install(globals())

    Validates the settings (a bad value stops gunicorn with one line). When profiling is off it
    installs nothing, so gunicorn behaves exactly as without the plugin. Returns the hook names set.
    """
    if settings is None:
        settings = startup()
    if not settings.enabled:
        return []
    for name, ours in OUR_HOOKS.items():
        theirs = namespace.get(name)
        if theirs is ours or getattr(theirs, "_gunicorn_pyinstrument", False):
            continue  # installed already (a base config that calls install itself)
        namespace[name] = ours if theirs is None else chain(name, theirs, ours)
    return list(OUR_HOOKS)


def load_base_config(location: str) -> dict[str, Any]:
    """The public names of a user's gunicorn config (a file path or python:module)."""
    try:
        if location.startswith("python:"):
            module = importlib.import_module(location.removeprefix("python:"))
        else:
            spec = importlib.util.spec_from_file_location("__gunicorn_pyinstrument_base__", location)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {location}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
    except Exception as exc:
        traceback.print_exc()
        print(
            f"{PREFIX}error: GUNICORN_PYINSTRUMENT_BASE_CONFIG={location!r} could not be loaded ({exc!r})",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(2) from None
    return {k: v for k, v in vars(module).items() if not k.startswith("_")}
