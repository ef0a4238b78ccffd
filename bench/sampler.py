"""Sampler engine: can every request be profiled, always, for under 3 % of throughput?

``gunicorn -w 2`` serving bench/app.py, ``sync`` and ``gthread --threads 4``, the configurations of
each side by side (harness/sidebyside.py): off, the sampler at its default budget
(``MAX_OVERHEAD=1%``, up to 100 Hz), and the sampler at 100 Hz without a budget. Target: sampler /
off >= 0.97 for each worker type, on the median of the rounds' own ratios. ``make bench-sampler``;
``--rounds 3 --duration 2`` for a quick look.
"""

from __future__ import annotations

import functools
import shutil
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
from harness.table import loadavg, log, log_start, table, verdict

KINDS = {"sync": ["-k", "sync"], "gthread": ["-k", "gthread", "--threads", "4"]}
#: wrk's connections: every worker busy, and several of a gthread worker's threads. Each closes
#: after a response: with keep-alive, gthread keeps a connection on the worker that accepted it,
#: and one worker often ends up serving alone.
CONNECTIONS = {"sync": 4, "gthread": 8}
CLOSE = ("-H", "Connection: close")
COMMON = {"INTERVAL": "0.01", "SAMPLE_RATE": "1", "FORMATS": "session"}
#: Every request sampled, a report only for those of 50 ms or more (few: /work takes a few ms).
TAIL = {**COMMON, "ENGINE": "sampler", "MIN_DURATION": "0.05"}
CONFIGS: dict[str, dict[str, str] | None] = {
    "off": None,
    "sampler": TAIL,  # at the default budget, MAX_OVERHEAD=1%
    "sampler-nobudget": {**TAIL, "MAX_OVERHEAD": "off"},  # 100 Hz, whatever it costs
    "sampler-all": {**COMMON, "ENGINE": "sampler", "MIN_DURATION": "0"},
    "pyinstrument": {**COMMON, "ENGINE": "pyinstrument", "MIN_DURATION": "0"},
    "sampler-50hz": {**TAIL, "INTERVAL": "0.02"},
}
TARGET = 0.97
#: A slice in which one worker did less than this share of the work is measured again, once.
MIN_SPLIT = 0.25


def written(server: Server, served: int) -> list[str]:
    """Reports written for the requests served, and the sampling rate achieved: samples per second
    of request time in the reports (not for pyinstrument's engine, which samples on calls)."""
    if server.settings is None:
        return ["-", "-"]
    metas = reports.metadata(server.report_dir)
    seconds = sum(float(m.get("duration") or 0) for m in metas)
    hz = sum(int(m.get("samples") or 0) for m in metas) / seconds if seconds else 0
    sampler = server.settings["ENGINE"] == "sampler"
    return [f"{len(metas)}/{served}", f"{hz:.0f}" if hz and sampler else "-"]


def main() -> int:
    p = parser(__doc__, rounds=10, duration=3.0, freeze=True)
    add_list(p, "--kinds", list(KINDS))
    add_list(p, "--configs", list(CONFIGS), default=list(CONFIGS)[:3])
    args = p.parse_args()
    if not have_wrk("bench-sampler"):
        return 2
    log_start()
    isolate = shield(args.isolate)
    planned = args.rounds * len(args.kinds) * len(args.configs)
    retry = Retry(times=1, max_others=max_others(isolate), min_split=MIN_SPLIT, planned=planned)
    started = time.monotonic()
    base = tempfile.mkdtemp(prefix="gpi-bench-sampler-")
    slices: list[Slice] = []
    rows: list[list[str]] = []
    restarts = 0
    try:
        for kind in args.kinds:
            method = SideBySide(
                args.rounds, args.duration, CONNECTIONS[kind], isolate, args.freeze, CLOSE, retry
            )
            new = functools.partial(Server, base=base, worker_args=KINDS[kind], isolate=isolate)
            servers = {f"{kind}/{c}": new(f"{kind}/{c}", settings=CONFIGS[c]) for c in args.configs}
            mine = method.run(servers)
            for key, server in servers.items():
                served = method.served[key]
                rows.append([*key.split("/"), *summary(mine, key, f"{kind}/off"), *written(server, served)])
            slices += mine
            restarts += method.restarts
    finally:
        shutil.rmtree(base, ignore_errors=True)
    log()
    log(
        f"{args.rounds} rounds x {args.duration:g} s side by side, wrk -t1 -c4 (sync), -c8 (gthread), closing"
    )
    table(("worker", "config", *summary_heads("off"), "written/served", "Hz"), rows, left=2)
    log(legend("off"))
    log()
    log_rounds(slices)
    log("Ratios: median of the rounds' own ratios (judged), quartiles, ratio of the medians, by CPU:")
    verdicts = []
    for kind in args.kinds:
        for config in [c for c in args.configs if c != "off" and "off" in args.configs]:
            r = ratio(slices, f"{kind}/{config}", f"{kind}/off")
            log_ratio(f"{kind} {config} / off", r)
            if config == "sampler":
                ok = verdict(r.median >= TARGET)
                verdicts.append(f"{ok}: {kind} sampler / off = {r.median:.3f} (target >= {TARGET})")
    log()
    for line in verdicts:
        log(line)
    log(f"Run time: {time.monotonic() - started:.0f} s; {retry.summary()}")
    log(f"{restarts} worker(s) started anew during the slices; load average after the run: {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
