"""Profile any app served by Gunicorn with pyinstrument, through Gunicorn's server hooks."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .middleware import ProfilerMiddleware

__version__ = "0.1.0"
__all__ = ["ProfilerMiddleware", "__version__", "install"]


def install(namespace: MutableMapping[str, Any]) -> list[str]:
    """Add the profiling hooks to a gunicorn config, chained with the hooks already in it.

    The last line of your config.py::

        from gunicorn_pyinstrument import install; install(globals())
    """
    from .chaining import install as _install  # imported on use: `import gunicorn_pyinstrument` stays cheap

    return _install(namespace)


def __getattr__(name: str) -> Any:
    # ProfilerMiddleware is imported on use, so that the config module and gunicorn's workers,
    # which import this package, import nothing of it.
    if name == "ProfilerMiddleware":
        from .middleware import ProfilerMiddleware

        return ProfilerMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
