"""Load: wrk runs flat out and reads what it saw; a paced HTTP load runs for minutes beside others."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

from . import shield
from .ticks import CLK_TCK

#: The Python-heavy endpoint of bench/app.py and bench/asgi_app.py that every server benchmark loads.
HEAVY_PATH = "/work"
_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


@dataclasses.dataclass
class WrkResult:
    requests: int
    rps: float
    errors: int  # non-2xx or 3xx responses and socket errors
    cpu_ticks: int  # wrk's own CPU time


def have_wrk(target: str) -> bool:
    if shutil.which("wrk") is not None:
        return True
    print(f"wrk not found: apt-get install -y wrk (make {target} does it)", file=sys.stderr)
    return False


def wrk(url: str, duration: float, connections: int, isolate: bool, extra: Sequence[str] = ()) -> WrkResult:
    """``wrk -t1 -c<connections> -d<duration>`` in a session of its own (shielded when ``isolate``);
    ``extra``: more of wrk's arguments, a header for example."""
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration:g}s", "--timeout", "10s", *extra, url]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=isolate)
        try:
            if isolate:
                shield.set_nice(proc.pid)
            _, status, usage = os.wait4(proc.pid, 0)  # wait4 for wrk's CPU time
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped: Popen must not wait again
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", text)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if proc.returncode != 0 or not done or not rps:
        raise RuntimeError(f"wrk failed:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    return WrkResult(
        requests=int(done.group(1)),
        rps=float(rps.group(1)),
        errors=(int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
        cpu_ticks=round((usage.ru_utime + usage.ru_stime) * CLK_TCK),
    )


class PacedLoad:
    """``connections`` threads, each a keep-alive HTTP client asking for GET /work at ``rate /
    connections`` requests per second (as fast as the server answers when it cannot keep up, never
    more than a second's requests to catch up)."""

    def __init__(self, port: int, rate: float, connections: int) -> None:
        self.port = port
        self.period = connections / rate
        self.ok = 0
        self.errors = 0  # other answers than 200, connection errors, timeouts
        self.retried = 0  # sent again on a new connection after the server closed a keep-alive one
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(connections)
        ]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            if t.is_alive():
                t.join(35)

    def _count(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self.ok += 1
            else:
                self.errors += 1

    def _run(self, index: int) -> None:
        conn: http.client.HTTPConnection | None = None
        next_at = time.monotonic() + self.period * index / len(self._threads)
        while not self._stop.wait(max(0.0, next_at - time.monotonic())):
            next_at = max(next_at + self.period, time.monotonic() - 1.0)
            for attempt in (1, 2):
                reused = conn is not None
                try:
                    conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                    conn.request("GET", HEAVY_PATH)
                    resp = conn.getresponse()
                    resp.read()
                    self._count(resp.status == 200)
                    if resp.will_close:
                        conn.close()
                        conn = None
                    break
                except (OSError, http.client.HTTPException):
                    if conn is not None:
                        conn.close()
                    conn = None
                    if reused and attempt == 1:
                        # The server closed an idle keep-alive connection as it was reused (a race
                        # every HTTP client meets): once more on a new one, as clients do.
                        with self._lock:
                            self.retried += 1
                        continue
                    self._count(False)
                    self._stop.wait(0.2)
        if conn is not None:
            conn.close()
