"""A gunicorn config module that turns profiling on, with nothing else to edit.

    GUNICORN_PYINSTRUMENT=1 gunicorn -c python:gunicorn_pyinstrument.config myapp:app
    GUNICORN_PYINSTRUMENT=1 gunicorn -c gunicorn_pyinstrument/config.py myapp:app   # from a checkout

With GUNICORN_PYINSTRUMENT_BASE_CONFIG=./config.py it first loads your own config file (its settings
and hooks) and chains its hooks with ours. Apart from that it defines only gunicorn hook names, and
``__all__`` lists only those, so ``from gunicorn_pyinstrument.config import *`` never overrides a
setting of yours. With profiling off it defines no hook at all.
"""

from gunicorn_pyinstrument import chaining as _chaining
from gunicorn_pyinstrument import hooks as _hooks

_settings = _hooks.startup()
if _settings.base_config:
    globals().update(_chaining.load_base_config(_settings.base_config))
__all__ = _chaining.install(globals(), _settings)
