"""Catalog and CLI: how fast is ``gunicorn-pyinstrument`` on a directory of 100,000 reports?

Generates the reports of a Flask shop API (shop.py, synthetic.py), then runs the console script,
``.venv/bin/gunicorn-pyinstrument --dir DIR ...``, several times per command, timed from start to
exit (interpreter start included); CPU is the command's user + system time. Targets: ``list`` and
``top`` under 1 s, ``merge`` of 1,000 sessions under 2 s. ``make bench-catalog``; ``--reports 20000
--rounds 3`` for a quick look; ``--keep DIR`` keeps the generated directory for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import synthetic
from harness.table import loadavg, log, log_start, table, verdict
from synthetic import DIFF_LABEL, MERGE_LABEL, PER_LABEL

from gunicorn_pyinstrument.catalog import MTIME_GRACE_SECONDS
from gunicorn_pyinstrument.directory import INDEX_DIR

CLI = os.path.join(os.path.dirname(sys.executable), "gunicorn-pyinstrument")
COLD_ROUNDS = 3
#: key: (the command's arguments, a note, the target in seconds); {out} and {keep} filled in.
#: "cold" removes the index before each run, "changed" adds a report: the others find it up to date.
COMMANDS: dict[str, tuple[str, str, float | None]] = {
    "cold": ("list", "first build of the index: no DIR/.catalog", None),
    "list": ("list", "the newest 50", 1.0),
    "list-json": ("list --json --limit 0", "all of them", 1.0),
    "list-path": ("list --path ^/api/export", "0.5 % of the reports", 1.0),
    "list-status": ("list --status 5xx", "", 1.0),
    "list-label": (f"list --label {MERGE_LABEL}", "", 1.0),
    "changed": ("list", "one report added since the last command", 1.0),
    "top": ("top", "", 1.0),
    "top-v1": ("top --label v1", "", 1.0),
    "merge-html": (f"merge --label {MERGE_LABEL} -f html -o {{out}}/merged.html", "", 2.0),
    "merge-session": (f"merge --label {MERGE_LABEL} -f session -o {{out}}/merged.pyisession", "", 2.0),
    "diff": (f"diff label={MERGE_LABEL} label={DIFF_LABEL} --no-progress", "", None),
    "prune": ("prune --dry-run --max-reports {keep}", "", None),
}


def settle(directory: str) -> None:
    """Until the directory's modification time is old enough for the catalog to trust its index."""
    time.sleep(max(0.0, MTIME_GRACE_SECONDS + 0.2 - (time.time() - os.stat(directory).st_mtime)))


def run_cli(directory: str, argv: list[str], out_path: str) -> tuple[float, float, str]:
    """Wall and CPU seconds of one run, and what it wrote to stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with open(out_path, "wb") as out:
        cmd = [CLI, "--dir", directory, *argv]
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"exit status {proc.returncode}: {stderr.strip()[-500:]}")
    return seconds, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, stderr


def check(key: str, out_path: str, stderr: str, total: int) -> str:
    """What a command printed, checked once (its times mean nothing if it did the wrong thing)."""
    with open(out_path, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    lines = out.splitlines()
    if key == "list-json" and len(json.loads(out)) != total:
        raise RuntimeError(f"{len(json.loads(out))} records, expected {total}")
    if key.startswith("merge"):
        merged = [x for x in stderr.splitlines() if x.startswith(f"merged {PER_LABEL} report(s)")]
        if not merged:
            raise RuntimeError(f"unexpected output {stderr.strip()!r}")
        size = os.path.getsize(
            os.path.join(
                os.path.dirname(out_path), "merged.pyisession" if key == "merge-session" else "merged.html"
            )
        )
        return f"{merged[0]}; {size / 1e6:.1f} MB written"
    if key == "diff":
        change = lines[4].split()
        return f"{lines[0].split(';')[0]}; top change: {change[0]} {change[3]} ms"
    if key.startswith("top"):
        return f"{len(lines) - 1} endpoints; first: {' '.join(lines[1].split()[:3])}"
    if key == "list-json":
        return f"{total} records, {len(out) / 1e6:.1f} MB of JSON"
    return f"{len(lines) - 1} rows" if key.startswith("list") or key in ("cold", "changed") else lines[0]


def measure(
    key: str, directory: str, workdir: str, rounds: int, total: int
) -> tuple[list[float], list[float], str]:
    """Wall and CPU seconds of each run of a command, and a note on its output."""
    argv = shlex.split(COMMANDS[key][0].format(out=workdir, keep=max(1, total * 9 // 10)))
    out_path = os.path.join(workdir, key + ".out")
    if key not in ("cold", "changed"):  # the index up to date first, as after any earlier change
        settle(directory)
        subprocess.run([CLI, "--dir", directory, "list", "--limit", "1"], capture_output=True)
    walls, cpus, note = [], [], ""
    for r in range(COLD_ROUNDS if key == "cold" else rounds):
        if key == "cold":
            shutil.rmtree(os.path.join(directory, INDEX_DIR), ignore_errors=True)
        elif key == "changed":
            synthetic.add_report(directory, r)
            total += 1
        else:
            settle(directory)
        wall, cpu, stderr = run_cli(directory, argv, out_path)
        walls.append(wall)
        cpus.append(cpu)
        note = note or check(key, out_path, stderr, total)
    return walls, cpus, note


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--reports", type=int, default=100_000, help="reports to generate; default 100000")
    p.add_argument("--rounds", type=int, default=5, help="runs of each command; default 5")
    p.add_argument("--keep", metavar="DIR", help="generate the reports in DIR and keep them, to reuse them")
    args = p.parse_args()
    if args.reports < 2 * PER_LABEL + 10:
        p.error(f"--reports: at least {2 * PER_LABEL + 10}")
    if not os.access(CLI, os.X_OK):
        print(f"{CLI} not found: install the package first (make install)", file=sys.stderr)
        return 2
    log_start()
    started = time.monotonic()
    base = tempfile.mkdtemp(prefix="gpi-bench-catalog-")
    directory = os.path.abspath(args.keep) if args.keep else os.path.join(base, "reports")
    workdir = os.path.join(base, "out")
    os.makedirs(workdir)
    rows, notes, verdicts = [], [], []
    try:
        if synthetic.prepare(directory, args.reports) is None:
            return 2
        total = args.reports
        for key, (argv, note, target) in COMMANDS.items():
            title = argv.format(out="DIR", keep=max(1, total * 9 // 10)) + (f" ({note})" if note else "")
            try:
                walls, cpus, checked = measure(key, directory, workdir, args.rounds, total)
            except (RuntimeError, ValueError, IndexError, OSError) as exc:
                walls, cpus, checked = [], [], f"FAILED: {exc}"
            total += len(walls) if key == "changed" else 0
            wall, cpu = (statistics.median(values) if values else float("nan") for values in (walls, cpus))
            result = "FAILED" if not walls else verdict(wall < target) if target else "-"
            limit = f"< {target:g} s" if target else "-"
            rows.append(
                [title, f"{wall:.3f}", f"{max(walls, default=wall):.3f}", f"{cpu:.3f}", limit, result]
            )
            notes.append(f"  {key}: {checked}")
            log(f"{key:<14} {' '.join(f'{t:.3f}' for t in walls)} (load average {loadavg()})")
            if target is not None:
                verdicts.append(f"{result}: {title} = {wall:.3f} s median (target < {target:g} s)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if args.keep:
            synthetic.remove_added(directory)
    log()
    log("Seconds from start to exit (interpreter start included); CPU: user + system time, median:")
    table(("command", "median", "max", "CPU", "target", "result"), rows)
    for line in [*notes, "", *verdicts]:
        log(line)
    log(f"Run time: {time.monotonic() - started:.0f} s; load average after: {loadavg()}")
    return 1 if any(row[-1] == "FAILED" for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
