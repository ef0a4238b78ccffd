"""Request path: what the request hooks cost a request in our code, measured in-process.

RequestMode's ``request_started`` and ``request_finished`` (what gunicorn's ``pre_request`` and
``post_request`` call), on a sync worker's RequestMode with the sampler engine, called from under a
30-frame stack, with the sampler thread running. Time is the calling thread's CPU time
(``time.thread_time``), per request, the median of the batches. Two cases:

* ``not-selected``: ``SAMPLE_RATE=0.5`` with a draw that always misses (target <= 5 us);
* ``discarded``: ``SAMPLE_RATE=1``, ``MIN_DURATION=0.05``: the request is sampled, ends at once
  and its capture is dropped (target <= 20 us).

``.venv/bin/python bench/request_path.py``; ``--batches 5`` for a quick look.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from gunicorn.workers.sync import SyncWorker

from gunicorn_pyinstrument.settings import load
from gunicorn_pyinstrument.worker.request_mode import RequestMode

TARGETS = {"not-selected": 5.0, "discarded": 20.0}
SETTINGS = {
    "not-selected": {"SAMPLE_RATE": "0.5"},
    "discarded": {"SAMPLE_RATE": "1", "MIN_DURATION": "0.05"},
}
#: The depth of the stack the hooks are called from (gunicorn's own is about 15 frames deep).
DEPTH = 30


class Request:
    """What the hooks read of gunicorn's request: method, path, query and header pairs."""

    method = "GET"
    path = "/api/orders/12345"
    query = "page=2"
    headers = (
        ("HOST", "localhost:8000"),
        ("USER-AGENT", "wrk"),
        ("ACCEPT", "*/*"),
        ("ACCEPT-ENCODING", "gzip"),
        ("CONNECTION", "keep-alive"),
    )


class Response:
    status = "200 OK"


def mode_for(case: str, directory: str) -> RequestMode:
    env = {"GUNICORN_PYINSTRUMENT": "1", "GUNICORN_PYINSTRUMENT_DIR": directory}
    env |= {f"GUNICORN_PYINSTRUMENT_{k}": v for k, v in {"ENGINE": "sampler", **SETTINGS[case]}.items()}
    mode = RequestMode(load(env), SyncWorker.__new__(SyncWorker))
    if case == "not-selected":
        # A draw that always misses: every request takes the path of one that is not chosen.
        mode.selector = dataclasses.replace(mode.selector, random=itertools.repeat(0.75).__next__)
    return mode


def at_depth(depth: int, work: Callable[[], Any]) -> Any:
    return work() if depth <= 1 else at_depth(depth - 1, work)


def batch(mode: RequestMode, count: int) -> float:
    """CPU microseconds per request over ``count`` requests."""
    started, finished = mode.request_started, mode.request_finished
    req, resp = Request(), Response()
    clock = time.thread_time
    t0 = clock()
    for _ in range(count):
        started(req)
        finished(req, resp)
    return (clock() - t0) / count * 1e6


def loop_only(count: int) -> float:
    """The loop and two no-op calls: what a batch costs outside the hooks."""

    def nothing(*args: Any) -> None:
        return None

    clock = time.thread_time
    t0 = clock()
    for _ in range(count):
        nothing(None)
        nothing(None, None)
    return (clock() - t0) / count * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--batches", type=int, default=15, help="default 15")
    p.add_argument("--requests", type=int, default=5000, help="requests per batch; default 5000")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpi-bench-request-path-") as directory:
        overhead = statistics.median(at_depth(DEPTH, lambda: loop_only(args.requests)) for _ in range(5))
        print(f"{args.batches} batches x {args.requests} requests, {DEPTH}-frame stack; CPU per request")
        print(f"{'case':<14}{'median us':>10}{'min':>8}{'max':>8}{'target':>8}  result")
        for case, target in TARGETS.items():
            mode = mode_for(case, directory)
            at_depth(DEPTH, lambda m=mode: batch(m, 200))  # warm-up: the sampler thread, the caches
            times = [at_depth(DEPTH, lambda m=mode: batch(m, args.requests)) for _ in range(args.batches)]
            median = statistics.median(times) - overhead
            ok = median <= target
            print(
                f"{case:<14}{median:>10.2f}{min(times) - overhead:>8.2f}{max(times) - overhead:>8.2f}"
                f"{target:>8.0f}  {'PASS' if ok else 'FAIL'}"
            )
            mode.close()
        print(f"(less {overhead:.2f} us of loop per request; Python {sys.version.split()[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
