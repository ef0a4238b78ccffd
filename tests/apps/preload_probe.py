"""A WSGI app that records, when it is imported, whether pyinstrument was already imported.

With ``--preload`` gunicorn imports it in the master, after loading the config, so the record shows
whether the plugin imported pyinstrument in the master. The record (one JSON line: pid and the
pyinstrument modules loaded) is appended to the file named by ``PRELOAD_PROBE_FILE``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

_probe = os.environ.get("PRELOAD_PROBE_FILE")
if _probe:
    loaded = sorted(m for m in sys.modules if m == "pyinstrument" or m.startswith("pyinstrument."))
    with open(_probe, "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "pyinstrument_modules": loaded}) + "\n")


def probe_work(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += sum(i * i for i in range(200))
    return n


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    probe_work(0.05)
    body = b"probed\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
