"""The FastAPI app of ``fastapi_app.py`` wrapped in ProfilerMiddleware, for uvicorn on its own:
``tests.apps.fastapi_middleware_app:app``."""

from __future__ import annotations

from gunicorn_pyinstrument import ProfilerMiddleware
from tests.apps.fastapi_app import app as fastapi_app

app = ProfilerMiddleware(fastapi_app)
