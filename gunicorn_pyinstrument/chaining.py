"""Putting the plugin's hooks into a gunicorn config, chained with the user's own hooks.

``config.py`` and ``install(globals())`` both come here. Our hooks nest inside the user's: on the
way in (start-up, request start) the user's hook runs first, on the way out (request end, exit)
ours runs first, so a report covers the app and not the user's own request hooks, and our exit
work is not delayed by theirs. An exception in their hook does not stop ours and is re-raised, so
gunicorn treats their hook exactly as it would without the plugin.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Callable, MutableMapping
from typing import Any

from .hooks import OUR_HOOKS, startup
from .logs import PREFIX
from .settings import Settings

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
