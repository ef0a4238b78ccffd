"""A WSGI app that answers which of the reading side's modules its worker process has imported."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

#: The reading side (and what only it needs): never imported into gunicorn's master or workers.
READING_SIDE = (
    "sqlite3",
    "http.server",
    "boto3",
    "gunicorn_pyinstrument.catalog",
    "gunicorn_pyinstrument.reading",
    "gunicorn_pyinstrument.cli",
    "gunicorn_pyinstrument.web",
)


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    # Long enough for every engine to take samples: a report is written only if it has some.
    deadline = time.perf_counter() + 0.02
    while time.perf_counter() < deadline:
        pass
    loaded = sorted(name for name in READING_SIDE if name in sys.modules)
    body = json.dumps({"loaded": loaded, "plugin": "gunicorn_pyinstrument.hooks" in sys.modules}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
