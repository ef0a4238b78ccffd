"""Per-worker mode: does a worker's memory stay flat, and what does profiling cost, per worker type?

Each worker type as ``gunicorn -w 1``: sync, gthread --threads 4 and gevent serving bench/app.py,
asgi and UvicornWorker serving bench/asgi_app.py (a FastAPI app), in two phases:

throughput  the plugin off and per-worker mode side by side (harness/sidebyside.py); no target.
memory      worker_memory.py: every server at once for --minutes, RSS growth under 20 MB.

Per-worker mode is MODE=worker, FORMATS=session, FLUSH_INTERVAL=60, ENGINE=--engine at INTERVAL
0.001 (pyinstrument) or 0.01 (sampler). ``make bench-worker-mode`` (about 14 minutes);
``--minutes 1`` for a quick look.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
import tempfile
import time

from harness.load import have_wrk
from harness.options import add_list, parser
from harness.server import Server
from harness.shield import shield
from harness.sidebyside import SideBySide, legend, log_rounds, summary, summary_heads
from harness.slices import Slice
from harness.table import log, log_start, table, verdict
from worker_memory import memory_phase

#: Worker type: gunicorn's worker arguments, and the app.
TYPES = {
    "sync": (["-k", "sync"], "app:app"),
    "gthread": (["-k", "gthread", "--threads", "4"], "app:app"),
    "gevent": (["-k", "gevent"], "app:app"),
    "asgi": (["-k", "asgi"], "asgi_app:app"),
    "uvicorn": (["-k", "uvicorn_worker.UvicornWorker"], "asgi_app:app"),
}
CONNECTIONS = 4


def make_server(kind: str, variant: str, base: str, engine: str, isolate: bool = False) -> Server:
    """``variant``: off, or worker (per-worker mode)."""
    settings = {
        "MODE": "worker",
        "FORMATS": "session",
        "FLUSH_INTERVAL": "60",
        "ENGINE": engine,
        "INTERVAL": "0.01" if engine == "sampler" else "0.001",
    }
    worker_args, app = TYPES[kind]
    return Server(
        f"{kind}/{variant}",
        base,
        settings if variant == "worker" else None,
        workers=1,
        worker_args=worker_args,
        app=app,
        isolate=isolate,
    )


def throughput_phase(kinds: list[str], args: argparse.Namespace, base: str) -> str:
    isolate = shield(args.isolate)
    slices: list[Slice] = []
    rows = []
    for kind in kinds:
        method = SideBySide(args.rounds, args.duration, CONNECTIONS, isolate, args.freeze)
        servers = {f"{kind}/{v}": make_server(kind, v, base, args.engine, isolate) for v in ("off", "worker")}
        mine = method.run(servers)
        rows += [[key, *summary(mine, key, f"{kind}/off")] for key in servers]
        slices += mine
    log()
    log(f"Throughput: {args.rounds} rounds x {args.duration:g} s side by side, wrk -t1 -c{CONNECTIONS}")
    table(("server", *summary_heads("off")), rows)
    log(legend("off"))
    log()
    log_rounds(slices)
    errors = sum(s.load.errors for s in slices)
    return f"{verdict(errors == 0)}: throughput phase answered every request ({errors} errors)"


def main() -> int:
    p = parser(__doc__, rounds=3, duration=5.0, freeze=True)
    add_list(p, "--types", list(TYPES))
    add_list(p, "--phases", ["throughput", "memory"])
    p.add_argument(
        "--engine", choices=("pyinstrument", "sampler"), default="pyinstrument", help="per-worker mode's"
    )
    p.add_argument("--minutes", type=float, default=10.0, help="memory phase: minutes of load; default 10")
    p.add_argument(
        "--no-memory-off",
        dest="memory_off",
        action="store_false",
        help="memory phase: no plugin-off servers beside the others",
    )
    args = p.parse_args()
    if "throughput" in args.phases and not have_wrk("bench-worker-mode"):
        return 2
    log_start()
    started = time.monotonic()
    base = tempfile.mkdtemp(prefix="gpi-bench-wm-")
    verdicts = []
    try:
        if "throughput" in args.phases:
            verdicts.append(throughput_phase(args.types, args, base))
        if "memory" in args.phases:
            log("Memory phase (normal priority)")
            variants = ["worker", "off"] if args.memory_off else ["worker"]
            make = functools.partial(make_server, base=base, engine=args.engine)
            verdicts += memory_phase(args.types, variants, make, args.minutes)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    log()
    for line in verdicts:
        log(line)
    log(f"Run time: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
