"""Profile any app served by Gunicorn with pyinstrument, through Gunicorn's server hooks."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "install"]


def install(namespace: MutableMapping[str, Any]) -> list[str]:
    """Add the profiling hooks to a gunicorn config, chained with the hooks already in it.

    The last line of your config.py::

        from gunicorn_pyinstrument import install; install(globals())
    """
    from .chaining import install as _install  # imported on use: `import gunicorn_pyinstrument` stays cheap

    return _install(namespace)
