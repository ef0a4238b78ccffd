"""The Flask app of ``flask_app.py``, wrapped the usual way,
``app.wsgi_app = ProfilerMiddleware(app.wsgi_app)``: for servers without gunicorn's hooks (waitress,
the Werkzeug development server) and for gunicorn with them (``tests.apps.flask_middleware_app:app``).
Servers import it in processes of their own, so the app of ``flask_app.py`` is wrapped only there."""

from __future__ import annotations

from gunicorn_pyinstrument import ProfilerMiddleware
from tests.apps.flask_app import app

app.wsgi_app = ProfilerMiddleware(app.wsgi_app)  # type: ignore[method-assign]

__all__ = ["app"]
