"""A directory of synthetic reports of the shop API (shop.py), written as the plugin writes them.

The reports of ``gunicorn -w 4`` on four hosts over the last week: every report has a
``.meta.json`` written exactly as the plugin writes it (``Report.metadata()`` serialized by the
writer's ``dumps``), a ``.pyisession`` and an ``.html`` (the default formats). Workers are recycled
now and then, a few reports are per-worker windows, and the label is ``v1`` before a release in
the middle of the week and ``v2`` after it.

- PER_LABEL reports for each of MERGE_LABEL and DIFF_LABEL have a session of their own, the
  second with one function (``apply_discounts``) slower: ``merge`` and ``diff`` work on these.
- Every other report's session and html are hard links to one of a few template sessions of its
  endpoint (real, loadable sessions; linked rather than copied to keep the generation quick and the
  disk use small; the catalog sees their real sizes).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import sys
import time
from typing import Any

from harness.table import log
from shop import INTERVAL, endpoints, make_session

from gunicorn_pyinstrument.directory import dumps
from gunicorn_pyinstrument.formats import render
from gunicorn_pyinstrument.report import Report, RequestFacts, Sampling, WindowFacts, WorkerIdentity

MERGE_LABEL = "v3-rc1"
DIFF_LABEL = "v3-rc2"
PER_LABEL = 1000  # reports with a session of their own, per label
TEMPLATES_PER_ENDPOINT = 3
#: A marker in a kept directory: what was generated there, so a later run can reuse it.
MARKER = ".bench-catalog.json"
TEMPLATE_DIR = ".bench-templates"  # hidden: the catalog and retention skip dot names
SEED = 1
ADDED = "abcdef"  # in the names of the reports add_report() writes (the worker's identity)


@dataclasses.dataclass
class Worker:
    identity: WorkerIdentity
    sequence: int = 0


def write_file(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # too many links, or a file system without them
        shutil.copyfile(source, target)


def write_report(
    directory: str,
    facts: RequestFacts | WindowFacts,
    identity: WorkerIdentity,
    sequence: int,
    label: str,
    samples: int,
    session: str | bytes,
    html: str,
) -> None:
    """A report as the writer writes it: its session (its own, or a template's file linked), its
    page (a template's, linked), then its ``.meta.json``."""
    name = Report.make_name(facts, identity, sequence)
    files = {"html": name + ".html", "session": name + ".pyisession"}
    if isinstance(session, bytes):
        write_file(os.path.join(directory, files["session"]), session)
    else:
        link_or_copy(session, os.path.join(directory, files["session"]))
    link_or_copy(html, os.path.join(directory, files["html"]))
    # pyinstrument's engine: its rate, and no sampler whose cost to record.
    sampling = Sampling(rate=samples / facts.duration if facts.duration > 0 else None)
    report = Report(name, facts, identity, label, ("session", "html"), samples, INTERVAL, sampling)
    write_file(os.path.join(directory, report.metadata_name), dumps(report.metadata(files)))


def add_report(directory: str, n: int) -> None:
    """One more report, as a worker writing while the command runs (a template's files)."""
    template = os.path.join(directory, TEMPLATE_DIR, "0-0")
    identity = WorkerIdentity(999_000 + n, 1, "SyncWorker", "web-9", ADDED)
    facts = RequestFacts("GET", f"/api/orders/{n}", 200, time.time(), 0.05, "sample")
    write_report(directory, facts, identity, n, "v2", 100, template + ".pyisession", template + ".html")


def remove_added(directory: str) -> None:
    """The reports add_report() wrote: not part of the generated set."""
    for name in os.listdir(directory):
        if f"-{ADDED}-" in name:
            os.unlink(os.path.join(directory, name))


def prepare(directory: str, count: int) -> dict[str, Any] | None:
    """The generated reports: reused from a kept directory, or generated; None when ``directory``
    holds something else."""
    marker = os.path.join(directory, MARKER)
    if os.path.exists(marker):
        with open(marker) as f:
            made: dict[str, Any] = json.load(f)
        if made.get("reports") != count or made.get("seed") != SEED:
            print(f"{directory} holds another set of reports: remove it first", file=sys.stderr)
            return None
        log(f"reusing {count:,} reports in {directory}")
    elif os.path.isdir(directory) and os.listdir(directory):
        print(f"{directory} holds something else than reports generated here", file=sys.stderr)
        return None
    else:
        log(f"generating {count:,} reports in {directory} ...")
        t0 = time.perf_counter()
        made = generate(directory, count)
        log(f"  generated in {time.perf_counter() - t0:.1f} s")
    n, size = disk_usage(directory)
    log(f"  {n:,} files, {size / 1e6:.0f} MB on disk (templates hard-linked); {made['counts']}")
    return made


def generate(directory: str, count: int) -> dict[str, Any]:
    """Write ``count`` reports in ``directory``, PER_LABEL of them with a session of their own for
    each of MERGE_LABEL and DIFF_LABEL; returns what was made (also saved in MARKER)."""
    per_label = PER_LABEL
    rng = random.Random(SEED)
    os.makedirs(directory, mode=0o700, exist_ok=True)
    templates_dir = os.path.join(directory, TEMPLATE_DIR)
    os.makedirs(templates_dir, mode=0o700, exist_ok=True)
    plain, slow = endpoints(False), endpoints(True)
    weights = [e.weight for e in plain]
    now = time.time()
    start = now - 7 * 86400
    release_at = now - 3.5 * 86400

    # Template sessions and pages, a few per endpoint.
    templates: list[list[tuple[str, str, int]]] = []
    for e, endpoint in enumerate(plain):
        mine = []
        for k in range(TEMPLATES_PER_ENDPOINT):
            samples = rng.randint(50, 200)
            template = make_session(endpoint, rng, start, samples, f"{endpoint.method} {endpoint.pattern}")
            stem = os.path.join(templates_dir, f"{e}-{k}")
            write_file(stem + ".pyisession", render(template, "session"))
            write_file(stem + ".html", render(template, "html"))
            mine.append((stem + ".pyisession", stem + ".html", samples))
        templates.append(mine)

    # Which reports get a session of their own, and their label.
    special: dict[int, str] = {}
    candidates = rng.sample(range(count), min(count, 2 * per_label + count // 500))
    windows = set(candidates[2 * per_label :])  # 0.2 %: per-worker windows
    for i, index in enumerate(candidates[: 2 * per_label]):
        special[index] = MERGE_LABEL if i < per_label else DIFF_LABEL

    hosts = [f"web-{h}" for h in range(1, 5)]
    pids = iter(range(20000, 10**6))
    slots = {
        (host, s): Worker(WorkerIdentity(next(pids), s + 1, "SyncWorker", host, f"{rng.getrandbits(24):06x}"))
        for host in hosts
        for s in range(4)
    }
    counts: dict[str, Any] = {
        "reports": 0,
        "own_sessions": 0,
        "windows": 0,
        "labels": {},
        "status_5xx": 0,
        "export": 0,
    }
    gaps = [rng.expovariate(1.0) for _ in range(count)]
    scale = (now - 60 - start) / sum(gaps)  # the newest report a minute ago
    t = start
    for index in range(count):
        t += gaps[index] * scale
        host, slot = rng.choice(hosts), rng.randrange(4)
        worker = slots[host, slot]
        if rng.random() < 1 / 3000:  # max_requests recycling: a new worker in this slot
            age = (worker.identity.age or 0) + 4
            worker = slots[host, slot] = Worker(
                WorkerIdentity(next(pids), age, "SyncWorker", host, f"{rng.getrandbits(24):06x}")
            )
        worker.sequence += 1
        label = special.get(index) or ("v1" if t < release_at else "v2")
        if index in windows:
            facts: RequestFacts | WindowFacts = WindowFacts(t, 60.0 + rng.uniform(0, 0.05))
            e = rng.randrange(len(plain))
            endpoint = plain[e]
            counts["windows"] += 1
        else:
            e = rng.choices(range(len(plain)), weights)[0]
            endpoint = plain[e]
            status: int | None = rng.choices(
                [s for s, _ in endpoint.status], [w for _, w in endpoint.status]
            )[0]
            duration = endpoint.median_ms / 1000 * rng.lognormvariate(0, 0.5)
            outcome = ""
            if rng.random() < 0.0002:
                status, duration, outcome = None, 30.0 + rng.uniform(0, 0.5), "timeout"
            facts = RequestFacts(endpoint.method, endpoint.path(rng), status, t, duration, "sample", outcome)
            counts["status_5xx"] += status is not None and status >= 500
            counts["export"] += endpoint.pattern == "/api/export"
        if index in special:
            samples = rng.randint(50, 200)
            endpoint = (slow if special[index] == DIFF_LABEL else plain)[e]
            path = facts.path if isinstance(facts, RequestFacts) else ""
            own = make_session(endpoint, rng, t, samples, f"{endpoint.method} {path}")
            facts = dataclasses.replace(facts, duration=own.duration)
            # Their pages are not looked at here: a template's page stands in for each.
            session: str | bytes = render(own, "session")
            html = templates[e][0][1]
            counts["own_sessions"] += 1
        else:
            session, html, samples = templates[e][rng.randrange(TEMPLATES_PER_ENDPOINT)]
        write_report(directory, facts, worker.identity, worker.sequence, label, samples, session, html)
        counts["reports"] += 1
        counts["labels"][label] = counts["labels"].get(label, 0) + 1
    made = {"reports": count, "seed": SEED, "per_label": per_label, "counts": counts}
    with open(os.path.join(directory, MARKER), "w") as f:
        json.dump(made, f)
    return made


def disk_usage(directory: str) -> tuple[int, int]:
    """(files, bytes of distinct files) in the directory, hidden ones excluded."""
    files, size, seen = 0, 0, set()
    with os.scandir(directory) as entries:
        for item in entries:
            if item.name.startswith(".") or not item.is_file(follow_symlinks=False):
                continue
            files += 1
            st = item.stat(follow_symlinks=False)
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                size += st.st_blocks * 512
    return files, size
