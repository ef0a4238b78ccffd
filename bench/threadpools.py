"""Thread pools: what does the plugin cost when the request's work runs in a thread pool?

``gunicorn -w 1 -k uvicorn_worker.UvicornWorker`` serving a FastAPI ``def`` route
(bench/threadpool_fastapi.py, run in anyio's thread pool) and a Django ASGI sync view
(bench/threadpool_django.py, run in asgiref's), each app's configurations side by side
(harness/sidebyside.py). Targets, on the median of the rounds' own ratios: ``SAMPLE_RATE=0.01``
/ off >= 0.97; the sampler engine in request mode with ``MIN_DURATION=0.5`` / off >= 0.95.
``make bench-threadpools``; ``--rounds 3 --duration 2`` for a quick look.
"""

from __future__ import annotations

import functools
import os
import shutil
import statistics
import sys
import tempfile
import time

from harness import reports
from harness.load import have_wrk
from harness.options import add_list, parser
from harness.server import Server
from harness.shield import max_others, shield
from harness.sidebyside import SideBySide, legend, log_ratio, log_rounds, ratio, summary, summary_heads
from harness.slices import Retry, Slice
from harness.table import loadavg, log, log_start, table

WORKER = ("-k", "uvicorn_worker.UvicornWorker")
#: app -> (gunicorn's app argument, a function of the pool's work that a report of /work must show)
APPS = {
    "fastapi": ("threadpool_fastapi:app", "pool_work"),
    "django": ("threadpool_django:application", "work_view"),
}
CONNECTIONS = 4
SAMPLER = {"ENGINE": "sampler", "SAMPLE_RATE": "1", "INTERVAL": "0.01", "FORMATS": "session"}
CONFIGS: dict[str, dict[str, str] | None] = {
    "off": None,
    "rate001": {"SAMPLE_RATE": "0.01", "FORMATS": "session"},
    # Every request sampled at 100 Hz, a report only for those of 0.5 s or more (none: /work takes ms).
    "sampler": {**SAMPLER, "MIN_DURATION": "0.5"},
    # A report for every request: does the sampler follow the request into the pool?
    "sampler-all": SAMPLER,
}
TARGETS = {"rate001": 0.97, "sampler": 0.95}


def written(server: Server, served: int, mark: str) -> list[str]:
    """Reports written for the requests served, and how many of their sessions show ``mark``, the
    pool's work (the profile followed the request into the pool)."""
    if server.settings is None:
        return ["-", "-"]
    metas = reports.metadata(server.report_dir)
    names = os.listdir(server.report_dir) if os.path.isdir(server.report_dir) else []
    sessions = [n for n in names if n.endswith(".pyisession") and reports.HEAVY_MARK in n]
    shown = 0
    for name in sessions:
        with open(os.path.join(server.report_dir, name), errors="replace") as f:
            shown += mark in f.read()
    return [f"{len(metas)}/{served}", f"{shown}/{len(sessions)}" if sessions else "-"]


def cpu_rounds(slices: list[Slice], key: str, base: str) -> list[float]:
    """Each round's own ratio of CPU per request, the base's over this one's (a process measures it
    about itself: steadier than requests/s on a shared machine)."""
    by_round: dict[int, dict[str, float]] = {}
    for s in slices:
        if s.requests and s.cpu_ticks:
            by_round.setdefault(s.round, {})[s.key] = s.cpu_ticks / s.requests
    return [r[base] / r[key] for _, r in sorted(by_round.items()) if key in r and base in r]


def spread(values: list[float], target: float | None = None) -> str:
    """Median (quartiles); against ``target``: PASS or FAIL on the median, within the noise when
    the target lies between the quartiles."""
    if len(values) < 2:
        return "-"
    (q1, _, q3), m = statistics.quantiles(values, n=4), statistics.median(values)
    text = f"{m:.3f} ({q1:.3f}-{q3:.3f})"
    if target is None:
        return text
    return f"{text} {'PASS' if m >= target else 'FAIL'}" + (
        ", within the noise" if q1 <= target <= q3 else ""
    )


def judge(app: str, config: str, slices: list[Slice]) -> str:
    key, base, target = f"{app}/{config}", f"{app}/off", TARGETS[config]
    thr, cpu = spread(ratio(slices, key, base).rounds, target), spread(cpu_rounds(slices, key, base), target)
    return f"{app} {config} / off (target >= {target}): requests/s {thr}; CPU per request {cpu}"


def main() -> int:
    p = parser(__doc__, rounds=10, duration=3.0, freeze=True)
    add_list(p, "--apps", list(APPS))
    add_list(p, "--configs", list(CONFIGS), default=list(CONFIGS)[:3])
    args = p.parse_args()
    if not have_wrk("bench-threadpools"):
        return 2
    log_start()
    isolate = shield(args.isolate)
    planned = args.rounds * len(args.apps) * len(args.configs)
    retry = Retry(times=1, max_others=max_others(isolate), planned=planned)
    started = time.monotonic()
    base = tempfile.mkdtemp(prefix="gpi-bench-threadpools-")
    slices: list[Slice] = []
    rows: list[list[str]] = []
    restarts = 0
    try:
        for app in args.apps:
            spec, mark = APPS[app]
            method = SideBySide(args.rounds, args.duration, CONNECTIONS, isolate, args.freeze, retry=retry)
            new = functools.partial(Server, base=base, workers=1, worker_args=WORKER, app=spec)
            servers = {
                f"{app}/{c}": new(f"{app}/{c}", settings=CONFIGS[c], isolate=isolate) for c in args.configs
            }
            mine = method.run(servers)
            for key, server in servers.items():
                cpu = spread(cpu_rounds(mine, key, f"{app}/off")) if server.settings else ""
                rows.append(
                    [
                        *key.split("/"),
                        *summary(mine, key, f"{app}/off"),
                        cpu,
                        *written(server, method.served[key], mark),
                    ]
                )
            slices += mine
            restarts += method.restarts
    finally:
        shutil.rmtree(base, ignore_errors=True)
    log()
    run = f"{args.rounds} rounds x {args.duration:g} s side by side"
    log(f"{run}, gunicorn -w 1 {' '.join(WORKER)}, wrk -t1 -c{CONNECTIONS} (keep-alive)")
    heads = ("app", "config", *summary_heads("off"), "by CPU per round", "written/served", "pool in report")
    table(heads, rows, left=2)
    log(legend("off") + "; by CPU per round: the median (quartiles) of the rounds' own ratios of it")
    log()
    log_rounds(slices)
    log("Ratios of requests/s: median of the rounds' own ratios, quartiles, ratio of the medians, by CPU:")
    verdicts = []
    for app in args.apps:
        for config in [c for c in args.configs if c != "off" and "off" in args.configs]:
            log_ratio(f"{app} {config} / off", ratio(slices, f"{app}/{config}", f"{app}/off"))
            if config in TARGETS:
                verdicts.append(judge(app, config, slices))
    log()
    for line in verdicts:
        log(line)
    others = max((s.others for s in slices), default=0.0)
    log(f"Run time: {time.monotonic() - started:.0f} s; {retry.summary()}")
    log(f"Other processes: at most {others:.0%} of the machine during a slice")
    log(f"{restarts} worker(s) started anew during the slices; load average after the run: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
