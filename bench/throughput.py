"""Throughput and CPU cost: what does the plugin cost a gunicorn app, off, sampled and always on?

``gunicorn -w 2 -k sync`` serving bench/app.py in five configurations, in an order rotated from
round to round. Each run has a server of its own, stopped after the load, so that html's helper is
followed to its exit: its CPU, the jobs pending when the load stopped, its time to finish after
SIGTERM to the master. ``make bench``; ``--rounds 2 --duration 3`` for a quick look.
"""

from __future__ import annotations

import dataclasses
import functools
import shutil
import sys
import tempfile
import time
from collections import Counter

from harness import reports
from harness.load import HEAVY_PATH, have_wrk, wrk
from harness.options import add_list, parser
from harness.server import Server, become_subreaper
from harness.shield import max_others, shield
from harness.sidebyside import WARMUP, legend, log_ratio, log_rounds, ratio, summary, summary_heads
from harness.slices import Retry, Slice, cpu_per_request, log_slice, measure
from harness.table import log, log_start, table, verdict
from harness.ticks import ms_per_request

CONFIGS: dict[str, dict[str, str] | None] = {
    "none": None,  # plain gunicorn, no -c
    "off": None,  # GUNICORN_PYINSTRUMENT=0
    "rate001": {"SAMPLE_RATE": "0.01", "FORMATS": "session"},
    "session": {"SAMPLE_RATE": "1", "FORMATS": "session"},
    "html": {"SAMPLE_RATE": "1", "FORMATS": "session,html"},  # the html rendered by the helper
}
#: Judged on the ratio of the medians of requests/s.
TARGETS = (("off", "none", 0.99), ("rate001", "none", 0.97), ("html", "session", 0.95))
CONNECTIONS = 4
DRAIN_TIMEOUT = 120.0


@dataclasses.dataclass
class Written:
    """What a run's server wrote for GET /work, counted once it and its helper have exited."""

    #: served (requests wrk saw answered, warm-up and load), meta.json, pyisession, html (files),
    #: jobs (left in the spool), failed (jobs), problems (lines of gunicorn's log).
    counts: Counter[str]
    drain: float  # seconds from SIGTERM to the master until the helper had exited
    helper_life: int | None  # the helper's CPU ticks from start to exit


Runs = dict[tuple[str, int], Written]  # by configuration and round: the run kept


def run(config: str, rnd: int, duration: float, isolate: bool, base: str, written: Runs) -> Slice:
    server = Server(config, base, CONFIGS[config], plugin=config != "none", isolate=isolate)
    try:
        server.start()
        helper = server.helper()
        if helper is None and config == "html":
            raise RuntimeError("no helper process under the master")
        warm = wrk(server.url + HEAVY_PATH, WARMUP, CONNECTIONS, isolate)
        s = measure(server, config, rnd, duration, CONNECTIONS, isolate)
        drain, life = server.stop_with_helper(helper, DRAIN_TIMEOUT) if helper else (0.0, None)
    finally:
        server.stop()
    problems = server.problems()
    for line in problems[:5]:
        log(f"  log ({config}): {line}")
    jobs, failed = reports.spool(server.report_dir)
    counts = Counter(served=warm.requests + s.requests, jobs=jobs, failed=failed, problems=len(problems))
    for end in ("meta.json", "pyisession", "html"):
        counts[end] = reports.count(server.report_dir, "." + end)
    written[config, rnd] = Written(counts, drain, life)
    shutil.rmtree(server.workdir, ignore_errors=True)
    return s


def written_line(config: str, ws: list[Written]) -> tuple[str, bool]:
    """What the runs wrote, and whether every request was profiled and every report is complete."""
    n = sum((w.counts for w in ws), Counter[str]())
    # Up to -c more reports than wrk counted per wrk run: the requests in flight when it stopped.
    profiled = n["served"] <= n["meta.json"] <= n["served"] + 2 * CONNECTIONS * len(ws)
    complete = n["meta.json"] == n["pyisession"] == n["html"] and n["jobs"] + n["failed"] + n["problems"] == 0
    line = (
        f"{config}: {n['meta.json']} .meta.json, {n['pyisession']} .pyisession, {n['html']} .html for "
        f"{n['served']} requests; {n['jobs']} jobs left, {n['failed']} failed, {n['problems']} log problems"
    )
    return line, profiled and complete


def note(config: str, w: Written) -> str:
    if config == "html":
        return (
            f", {w.counts['meta.json']} reports, {w.counts['html']} html, helper drained in {w.drain:.1f} s"
        )
    return f", {w.counts['meta.json']} reports" if CONFIGS[config] else ""


def report(slices: list[Slice], written: Runs, configs: list[str]) -> None:
    groups = {c: [s for s in slices if s.key == c] for c in configs}
    runs = {c: [w for (key, _), w in sorted(written.items()) if key == c] for c in configs}
    rows = []
    for c in configs:
        helper = f"{cpu_per_request(groups[c], 'helper'):.3f}" if c == "html" else "-"
        n = sum((w.counts for w in runs[c]), Counter[str]())
        served = "-" if CONFIGS[c] is None else f"{n['meta.json']}/{n['served']}"
        rows.append([c, *summary(slices, c, "none"), helper, served])
    table(("config", *summary_heads("none"), "helper ms/req", "written/served"), rows)
    log(legend("none"))
    log()
    log_rounds(slices)
    log("Ratios: median of the rounds' own ratios (quartiles; the ratio of the medians, judged; by CPU):")
    for num, den in [(num, den) for num, den, _ in TARGETS] + [("session", "none")]:
        if num in configs and den in configs:
            log_ratio(f"{num} / {den}", ratio(slices, num, den))
    if "html" in configs and "session" in configs:
        session, html = (
            cpu_per_request(groups[c]) + cpu_per_request(groups[c], "helper") for c in ("session", "html")
        )
        log(f"  html / session by CPU, the helper's included: {session / html:.3f}")
        life = sum(w.helper_life or 0 for w in runs["html"])
        pages = sum(w.counts["html"] for w in runs["html"])
        backlog = ", ".join(str(s.backlog) for s in groups["html"])
        drain = ", ".join(f"{w.drain:.1f}" for w in runs["html"])
        log(f"  html: jobs pending when the load stopped: {backlog}; helper done {drain} s after SIGTERM")
        log(f"  html: the helper's CPU from start to exit: {ms_per_request(life, pages):.2f} ms a report")
    log()
    for c in configs:
        if CONFIGS[c] is not None:
            log("  " + written_line(c, runs[c])[0])
    log()
    for num, den, target in TARGETS:
        if num in configs and den in configs:
            value = ratio(slices, num, den).of_medians
            log(f"{verdict(value >= target)}: {num} / {den} = {value:.3f} (target >= {target})")
    if "html" in configs:
        line, complete = written_line("html", runs["html"])
        log(f"{verdict(complete)}: every html report written in the end ({line})")


def main() -> int:
    p = parser(__doc__, rounds=5, duration=5.0)
    add_list(p, "--configs", list(CONFIGS))
    args = p.parse_args()
    if not have_wrk("bench"):
        return 2
    log_start()
    isolate = shield(args.isolate, "gunicorn, its helper and wrk")
    if not become_subreaper():
        log("(not a child subreaper: the helper's CPU after the master exits is its last reading)")
    retry = Retry(times=2, max_others=max_others(isolate), planned=args.rounds * len(args.configs))
    started = time.monotonic()
    base = tempfile.mkdtemp(prefix="gpi-bench-")
    slices: list[Slice] = []
    written: Runs = {}
    try:
        for rnd in range(args.rounds):
            shift = rnd % len(args.configs)
            for config in args.configs[shift:] + args.configs[:shift]:
                s = retry.measure(functools.partial(run, config, rnd, args.duration, isolate, base, written))
                log_slice(s, args.rounds, note(config, written[config, rnd]))
                slices.append(s)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    log()
    log(f"{args.rounds} rounds x {args.duration:g} s, wrk -t1 -c{CONNECTIONS} on GET {HEAVY_PATH}")
    report(slices, written, args.configs)
    log(f"Run time: {time.monotonic() - started:.0f} s; {retry.summary()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
