"""Catalog and CLI benchmark: how fast is ``gunicorn-pyinstrument`` on a directory of 100,000 reports?

Generates a directory of synthetic but realistic reports (``--reports``, default 100,000), then runs
the real console script, ``.venv/bin/gunicorn-pyinstrument --dir DIR ...``, as a subprocess,
several times per command, and times each run from start to exit (interpreter start included).

The reports look like those of a Flask shop API served by ``gunicorn -w 4`` on four hosts over a
week: ten endpoints with ids in their paths (folded by ``top``), realistic durations and statuses,
workers recycled now and then, a few per-worker windows, label ``v1`` before a release in the
middle of the week and ``v2`` after it. Every report has a ``.meta.json`` written exactly as the
plugin writes it (``Report.metadata()`` serialized by the writer's ``dumps``), a ``.pyisession`` and
an ``.html`` (the default formats). The sessions are pyinstrument Sessions of 50 to 200 samples at
``INTERVAL=0.001`` over a call stack 23 to 33 frames deep (gunicorn's sync worker, Flask, the view,
then SQLAlchemy, psycopg, Jinja, json, ...):

- 2,000 reports have a session of their own: 1,000 labelled ``v3-rc1`` and 1,000 ``v3-rc2``, the
  second with one function (``apply_discounts``) slower. ``merge`` and ``diff`` work on these.
- Every other report's session and html are hard links to one of a few template sessions of its
  endpoint (real, loadable sessions; linked rather than copied to keep the generation quick and the
  disk use small; the catalog sees their real sizes).

Targets: ``list`` and ``top`` under 1 s, for each variant timed (the newest 50, all 100,000 as
JSON, filtered, right after a report arrived); ``merge`` of 1,000 request sessions under 2 s, judged
for the default format (html) and for ``-f session``. The first build of the catalog's index,
``diff`` of two 1,000-report selections and ``prune --dry-run`` are timed without a target.

Prints a table (wall time, and the command's CPU time, which other processes affect less) and one
PASS/FAIL line per target; exits 0 unless a command failed or something crashed. ``make
bench-catalog`` runs it; ``--reports 20000 --rounds 3`` for a quick look; ``--keep DIR`` keeps the
generated directory and reuses it on the next run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

from pyinstrument.session import Session

from gunicorn_pyinstrument.catalog import MTIME_GRACE_SECONDS
from gunicorn_pyinstrument.directory import INDEX_DIR, dumps
from gunicorn_pyinstrument.formats import render
from gunicorn_pyinstrument.report import Report, RequestFacts, WindowFacts, WorkerIdentity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(os.path.dirname(sys.executable), "gunicorn-pyinstrument")

LIST_TOP_TARGET = 1.0  # seconds
MERGE_TARGET = 2.0
MERGE_LABEL = "v3-rc1"
DIFF_LABEL = "v3-rc2"
PER_LABEL = 1000  # reports with a session of their own, per label
INTERVAL = 0.001
TEMPLATES_PER_ENDPOINT = 3
LEAF_LINES = 6  # lines at which the innermost frame of a call chain is sampled
#: A marker in a kept directory: what was generated there, so a later run can reuse it.
MARKER = ".bench-catalog.json"
TEMPLATE_DIR = ".bench-templates"  # hidden: the catalog and retention skip dot names

SITE = "/srv/shop/.venv/lib/python3.11/site-packages"
APP = "/srv/shop/shop"


def log(message: str = "") -> None:
    print(message, flush=True)


# --- frames and sessions ---


def frame(name: str, path: str, first_line: int, line: int | None = None, cls: str | None = None) -> str:
    """A pyinstrument frame identifier: ``name\\0file\\0first-line`` then ``\\1``-attributes."""
    text = f"{name}\x00{path}\x00{first_line}"
    if cls:
        text += f"\x01c{cls}"
    return text + f"\x01l{line if line is not None else first_line + 3}"


THREAD = "MainThread\x00<thread>\x00140180415597440"
#: gunicorn's sync worker from the process's start down to the request (the real frames).
GUNICORN = [
    THREAD,
    frame("_run_module_as_main", "<frozen runpy>", 173, 198),
    frame("_run_code", "<frozen runpy>", 65, 88),
    frame("<module>", f"{SITE}/gunicorn/__main__.py", 1, 10),
    frame("run", f"{SITE}/gunicorn/app/wsgiapp.py", 60, 66),
    frame("run", f"{SITE}/gunicorn/app/base.py", 202, 236, "WSGIApplication"),
    frame("run", f"{SITE}/gunicorn/app/base.py", 70, 72, "WSGIApplication"),
    frame("run", f"{SITE}/gunicorn/arbiter.py", 241, 247, "Arbiter"),
    frame("manage_workers", f"{SITE}/gunicorn/arbiter.py", 694, 700, "Arbiter"),
    frame("spawn_workers", f"{SITE}/gunicorn/arbiter.py", 778, 787, "Arbiter"),
    frame("spawn_worker", f"{SITE}/gunicorn/arbiter.py", 726, 752, "Arbiter"),
    frame("init_process", f"{SITE}/gunicorn/workers/base.py", 88, 146, "SyncWorker"),
    frame("run", f"{SITE}/gunicorn/workers/sync.py", 111, 132, "SyncWorker"),
    frame("run_for_one", f"{SITE}/gunicorn/workers/sync.py", 58, 68, "SyncWorker"),
    frame("accept", f"{SITE}/gunicorn/workers/sync.py", 26, 30, "SyncWorker"),
    frame("handle", f"{SITE}/gunicorn/workers/sync.py", 134, 141, "SyncWorker"),
    frame("handle_request", f"{SITE}/gunicorn/workers/sync.py", 168, 172, "SyncWorker"),
]
FLASK = [
    frame("handle_request", f"{SITE}/gunicorn/workers/sync.py", 168, 181, "SyncWorker"),
    frame("__call__", f"{SITE}/flask/app.py", 1530, 1536, "Flask"),
    frame("wsgi_app", f"{SITE}/flask/app.py", 1484, 1511, "Flask"),
    frame("full_dispatch_request", f"{SITE}/flask/app.py", 896, 917, "Flask"),
    frame("dispatch_request", f"{SITE}/flask/app.py", 870, 894, "Flask"),
    frame("decorated", f"{APP}/auth.py", 41, 55),
]
AUTH = [
    frame("check_token", f"{APP}/auth.py", 18, 27),
    frame("decode", f"{SITE}/jwt/api_jwt.py", 190, 211, "PyJWT"),
    frame("decode_complete", f"{SITE}/jwt/api_jws.py", 240, 262, "PyJWS"),
    frame("_verify_signature", f"{SITE}/jwt/api_jws.py", 320, 337, "PyJWS"),
    frame("verify", f"{SITE}/jwt/algorithms.py", 300, 303, "HMACAlgorithm"),
]


def db(query: str) -> list[str]:
    return [
        frame(query, f"{APP}/repository.py", 30 + len(query), 38 + len(query)),
        frame("execute", f"{SITE}/sqlalchemy/orm/session.py", 2306, 2351, "Session"),
        frame("_execute_internal", f"{SITE}/sqlalchemy/orm/session.py", 2145, 2251, "Session"),
        frame("orm_execute_statement", f"{SITE}/sqlalchemy/orm/context.py", 293, 306, "ORMCompileState"),
        frame("execute", f"{SITE}/sqlalchemy/engine/base.py", 1374, 1418, "Connection"),
        frame("_execute_context", f"{SITE}/sqlalchemy/engine/base.py", 1791, 1843, "Connection"),
        frame("_exec_single_context", f"{SITE}/sqlalchemy/engine/base.py", 1852, 1967, "Connection"),
        frame("do_execute", f"{SITE}/sqlalchemy/engine/default.py", 940, 941, "DefaultDialect"),
        frame("execute", f"{SITE}/psycopg/cursor.py", 716, 732, "Cursor"),
        frame("wait", f"{SITE}/psycopg/waiting.py", 256, 289),
    ]


def serialize(what: str) -> list[str]:
    return [
        frame(f"dump_{what}", f"{APP}/serializers.py", 12 + len(what), 20 + len(what)),
        frame("jsonify", f"{SITE}/flask/json/__init__.py", 138, 170),
        frame("response", f"{SITE}/flask/json/provider.py", 189, 214, "DefaultJSONProvider"),
        frame("dumps", f"{SITE}/flask/json/provider.py", 166, 179, "DefaultJSONProvider"),
        frame("dumps", "/usr/lib/python3.11/json/__init__.py", 183, 238),
        frame("encode", "/usr/lib/python3.11/json/encoder.py", 183, 200, "JSONEncoder"),
        frame("iterencode", "/usr/lib/python3.11/json/encoder.py", 205, 258, "JSONEncoder"),
    ]


TEMPLATE = [
    frame("render_template", f"{SITE}/flask/templating.py", 137, 150),
    frame("_render", f"{SITE}/flask/templating.py", 126, 131),
    frame("render", f"{SITE}/jinja2/environment.py", 1269, 1295, "Template"),
    frame("root", f"{APP}/templates/invoice.html", 1, 24),
    frame("call", f"{SITE}/jinja2/runtime.py", 262, 303, "Context"),
    frame("format_money", f"{APP}/filters.py", 8, 11),
]


def pricing(slow: bool) -> list[tuple[list[str], float]]:
    base = [frame("compute_totals", f"{APP}/pricing.py", 52, 61)]
    return [
        (
            [*base, frame("apply_discounts", f"{APP}/pricing.py", 88, 97 if not slow else 104)],
            3.0 if slow else 1.0,
        ),
        (
            [
                *base,
                frame("apply_discounts", f"{APP}/pricing.py", 88, 95),
                frame("_round", f"{APP}/pricing.py", 120, 122),
            ],
            1.0,
        ),
        ([*base, frame("tax_for", f"{APP}/pricing.py", 130, 139)], 1.0),
    ]


@dataclasses.dataclass(frozen=True)
class Endpoint:
    method: str
    pattern: str  # {n}: a number, {uuid}, {hex}: a 24-digit hexadecimal id
    weight: float  # share of requests
    median_ms: float
    view: str  # module/function of the view
    work: tuple[tuple[tuple[str, ...], float], ...]  # (call chain below the view, weight)
    status: tuple[tuple[int, float], ...] = ((200, 1.0),)

    def path(self, rng: random.Random) -> str:
        return (
            self.pattern.replace("{n}", str(rng.randint(1, 2_000_000)))
            .replace("{uuid}", str(uuid.UUID(int=rng.getrandbits(128))))
            .replace("{hex}", f"{rng.getrandbits(96):024x}")
        )


def _work(*chains: tuple[list[str], float]) -> tuple[tuple[tuple[str, ...], float], ...]:
    return tuple((tuple(chain), weight) for chain, weight in chains)


def endpoints(slow_discounts: bool = False) -> list[Endpoint]:
    def view(module: str, name: str, line: int) -> str:
        return frame(name, f"{APP}/api/{module}.py", line, line + 9)

    orders = view("orders", "get_order", 40)
    return [
        Endpoint(
            "GET",
            "/api/orders/{n}",
            30,
            45,
            orders,
            _work(
                (AUTH, 1),
                (db("load_order"), 6),
                (db("load_lines"), 4),
                *pricing(slow_discounts),
                (serialize("order"), 2),
            ),
            ((200, 0.97), (404, 0.025), (500, 0.005)),
        ),
        Endpoint(
            "GET",
            "/api/users/{n}/orders",
            12,
            120,
            view("orders", "list_orders", 80),
            _work((AUTH, 1), (db("orders_of_user"), 10), *pricing(slow_discounts), (serialize("orders"), 5)),
            ((200, 0.99), (404, 0.01)),
        ),
        Endpoint(
            "POST",
            "/api/orders",
            8,
            180,
            view("orders", "create_order", 120),
            _work(
                (AUTH, 1),
                (db("insert_order"), 8),
                (db("reserve_stock"), 5),
                *pricing(slow_discounts),
                (serialize("order"), 1),
            ),
            ((201, 0.95), (400, 0.03), (409, 0.01), (500, 0.008), (503, 0.002)),
        ),
        Endpoint(
            "GET",
            "/api/products",
            15,
            60,
            view("catalog", "list_products", 20),
            _work((db("products_page"), 5), (serialize("products"), 6)),
        ),
        Endpoint(
            "GET",
            "/api/products/{n}",
            14,
            25,
            view("catalog", "get_product", 60),
            _work((db("load_product"), 4), (serialize("product"), 1)),
            ((200, 0.98), (404, 0.02)),
        ),
        Endpoint(
            "GET",
            "/api/search",
            8,
            250,
            view("search", "search", 15),
            _work((db("full_text_search"), 12), (serialize("results"), 4)),
            ((200, 0.985), (500, 0.01), (504, 0.005)),
        ),
        Endpoint(
            "PUT",
            "/api/cart/{uuid}",
            6,
            70,
            view("cart", "update_cart", 33),
            _work((AUTH, 1), (db("load_cart"), 3), (db("save_cart"), 4), *pricing(slow_discounts)),
            ((200, 0.97), (404, 0.02), (500, 0.01)),
        ),
        Endpoint(
            "GET",
            "/invoices/{hex}",
            4,
            300,
            view("invoices", "invoice_page", 12),
            _work((AUTH, 1), (db("load_invoice"), 3), *pricing(slow_discounts), (TEMPLATE, 8)),
            ((200, 0.99), (404, 0.01)),
        ),
        Endpoint(
            "GET",
            "/api/export",
            0.5,
            2500,
            view("export", "export_orders", 9),
            _work((db("orders_since"), 20), (serialize("orders"), 15)),
            ((200, 0.95), (500, 0.05)),
        ),
        Endpoint(
            "GET",
            "/",
            2.5,
            12,
            view("pages", "home", 5),
            _work((TEMPLATE, 3), (db("featured_products"), 2)),
        ),
    ]


def relined(identifier: str, offset: int) -> str:
    """The same frame at another line of its function (``\x01l`` is the line being run)."""
    head, _, line = identifier.rpartition("\x01l")
    return f"{head}\x01l{int(line) + offset}"


def make_session(
    endpoint: Endpoint, rng: random.Random, start: float, samples: int, description: str
) -> Session:
    """A session of ``samples`` samples of the endpoint's view (plus a little time in Flask)."""
    head = [*GUNICORN[:-1], *FLASK]
    chains = [[endpoint.view, *c] for c, _ in endpoint.work] + [[endpoint.view]]
    weights = [w for _, w in endpoint.work] + [0.5]  # the view's own code
    records = []
    elapsed = 0.0
    for chain in rng.choices(chains, weights, k=samples):
        seconds = INTERVAL * rng.uniform(1.0, 1.25)
        elapsed += seconds
        # The innermost frame is seen at one of several lines of its function, as in real samples.
        records.append(([*head, *chain[:-1], relined(chain[-1], rng.randrange(LEAF_LINES))], seconds))
    return Session(
        frame_records=records,
        start_time=start,
        duration=elapsed + rng.uniform(0.0002, 0.001),
        min_interval=INTERVAL,
        max_interval=INTERVAL,
        sample_count=samples,
        start_call_stack=list(GUNICORN),
        target_description=description,
        cpu_time=elapsed * rng.uniform(0.3, 0.9),
        sys_path=["/srv/shop", "/usr/lib/python311.zip", "/usr/lib/python3.11", SITE],
        sys_prefixes=["/srv/shop/.venv", "/usr"],
    )


# --- the directory ---


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


def generate(directory: str, count: int, seed: int, per_label: int = PER_LABEL) -> dict[str, Any]:
    """Write ``count`` reports in ``directory``, ``per_label`` of them with a session of their own for
    each of MERGE_LABEL and DIFF_LABEL; returns what was made (also saved in MARKER)."""
    rng = random.Random(seed)
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
        for t in range(TEMPLATES_PER_ENDPOINT):
            samples = rng.randint(50, 200)
            session = make_session(endpoint, rng, start, samples, f"{endpoint.method} {endpoint.pattern}")
            stem = os.path.join(templates_dir, f"{e}-{t}")
            write_file(stem + ".pyisession", render(session, "session"))
            write_file(stem + ".html", render(session, "html"))
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
    counts = {"reports": 0, "own_sessions": 0, "windows": 0, "labels": {}, "status_5xx": 0, "export": 0}
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
            status = rng.choices([s for s, _ in endpoint.status], [w for _, w in endpoint.status])[0]
            duration = endpoint.median_ms / 1000 * rng.lognormvariate(0, 0.5)
            outcome = ""
            if rng.random() < 0.0002:
                status, duration, outcome = None, 30.0 + rng.uniform(0, 0.5), "timeout"
            facts = RequestFacts(endpoint.method, endpoint.path(rng), status, t, duration, "sample", outcome)
            counts["status_5xx"] += status is not None and status >= 500
            counts["export"] += endpoint.pattern == "/api/export"
        name = Report.make_name(facts, worker.identity, worker.sequence)
        files = {"html": name + ".html", "session": name + ".pyisession"}
        if index in special:
            samples = rng.randint(50, 200)
            endpoint = (slow if special[index] == DIFF_LABEL else plain)[e]
            path = facts.path if isinstance(facts, RequestFacts) else ""
            session = make_session(endpoint, rng, t, samples, f"{endpoint.method} {path}")
            facts = dataclasses.replace(facts, duration=session.duration)
            name = Report.make_name(facts, worker.identity, worker.sequence)
            files = {"html": name + ".html", "session": name + ".pyisession"}
            write_file(os.path.join(directory, files["session"]), render(session, "session"))
            # Their pages are not looked at here: a template's page stands in for each.
            link_or_copy(templates[e][0][1], os.path.join(directory, files["html"]))
            counts["own_sessions"] += 1
        else:
            session_file, html_file, samples = templates[e][rng.randrange(TEMPLATES_PER_ENDPOINT)]
            link_or_copy(session_file, os.path.join(directory, files["session"]))
            link_or_copy(html_file, os.path.join(directory, files["html"]))
        report = Report(name, facts, worker.identity, label, ("session", "html"), samples, INTERVAL)
        write_file(os.path.join(directory, report.metadata_name), dumps(report.metadata(files)))
        counts["reports"] += 1
        counts["labels"][label] = counts["labels"].get(label, 0) + 1
    made = {"reports": count, "seed": seed, "per_label": per_label, "counts": counts}
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


# --- measuring ---


@dataclasses.dataclass
class Measure:
    key: str
    title: str
    args: list[str]
    target: float | None = None
    cold: bool = False  # remove DIR/.catalog before each run
    touch: bool = False  # add a report before each run (the directory changed since the last command)
    times: list[float] = dataclasses.field(default_factory=list)
    cpu: list[float] = dataclasses.field(default_factory=list)  # user + system seconds of the command
    notes: list[str] = dataclasses.field(default_factory=list)
    failed: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def worst(self) -> float:
        return max(self.times) if self.times else float("nan")

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")

    @property
    def passed(self) -> bool:
        return self.failed is None and self.target is not None and self.median < self.target


def settle(directory: str) -> None:
    """Wait until the directory's modification time is old enough for the catalog to trust its
    index without scanning the directory (see catalog.MTIME_GRACE_SECONDS)."""
    age = time.time() - os.stat(directory).st_mtime
    if age < MTIME_GRACE_SECONDS + 0.2:
        time.sleep(MTIME_GRACE_SECONDS + 0.2 - age)


def add_report(directory: str, n: int) -> None:
    """One more report, as a worker would write it (a copy of an existing one under a new name)."""
    template = os.path.join(directory, TEMPLATE_DIR, "0-0")
    identity = WorkerIdentity(999_000 + n, 1, "SyncWorker", "web-9", "abcdef")
    facts = RequestFacts("GET", f"/api/orders/{n}", 200, time.time(), 0.05, "sample")
    name = Report.make_name(facts, identity, n)
    files = {"html": name + ".html", "session": name + ".pyisession"}
    link_or_copy(template + ".pyisession", os.path.join(directory, files["session"]))
    link_or_copy(template + ".html", os.path.join(directory, files["html"]))
    report = Report(name, facts, identity, "v2", ("session", "html"), 100, INTERVAL)
    write_file(os.path.join(directory, report.metadata_name), dumps(report.metadata(files)))


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(m: Measure, directory: str, workdir: str, index: int) -> tuple[float, float, str, str]:
    if m.cold:
        shutil.rmtree(os.path.join(directory, INDEX_DIR), ignore_errors=True)
    elif m.touch:
        add_report(directory, index)
    else:
        settle(directory)
    out_path = os.path.join(workdir, f"{m.key}.stdout")
    args = [a.replace("{out}", workdir) for a in m.args]
    with open(out_path, "wb") as out:
        cpu0 = children_cpu()
        t0 = time.perf_counter()
        proc = subprocess.run(
            [CLI, "--dir", directory, *args], stdout=out, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        elapsed = time.perf_counter() - t0
        cpu = children_cpu() - cpu0
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit status {proc.returncode}: {stderr.strip()[-500:]}")
    return elapsed, cpu, out_path, stderr


def check(m: Measure, out_path: str, stderr: str, made: dict[str, Any], workdir: str) -> None:
    """What the command produced, checked once: the timings mean nothing if it did the wrong thing."""
    expected_total = made["reports"] + made.get("added", 0)
    if m.key == "list-json":
        with open(out_path, "rb") as f:
            records = json.load(f)
        if len(records) != expected_total:
            raise RuntimeError(
                f"list --json --limit 0 gave {len(records)} records, expected {expected_total}"
            )
        m.notes.append(f"{len(records)} records, {os.path.getsize(out_path) / 1e6:.1f} MB of JSON")
    elif m.key.startswith("list"):
        with open(out_path, encoding="utf-8") as f:
            rows = sum(1 for _ in f) - 1
        m.notes.append(f"{rows} rows")
    elif m.key.startswith("top"):
        with open(out_path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        m.notes.append(f"{len(lines) - 1} endpoints; first: {' '.join(lines[1].split()[:3])}")
    elif m.key.startswith("merge"):
        line = [x for x in stderr.splitlines() if x.startswith("merged ")]
        if not line or not line[0].startswith(f"merged {PER_LABEL} report(s)"):
            raise RuntimeError(f"merge: unexpected output {stderr.strip()!r}")
        fmt = "pyisession" if m.key == "merge-session" else "html"
        size = os.path.getsize(os.path.join(workdir, f"merged.{fmt}"))
        m.notes.append(f"{line[0]}; {size / 1e6:.1f} MB {fmt}")
    elif m.key == "diff":
        with open(out_path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        m.notes.append(
            f"{lines[0].split(';')[0]}; top change: {lines[4].split()[0]} {lines[4].split()[3]} ms"
        )
    elif m.key == "prune":
        with open(out_path, encoding="utf-8") as f:
            m.notes.append(f.readline().strip())
    if "warning" in stderr:
        m.notes.append("warnings: " + stderr.strip().splitlines()[0])


def measurements(made: dict[str, Any]) -> list[Measure]:
    total = made["reports"]
    keep = max(1, total * 9 // 10)
    return [
        Measure("cold", "first catalog build: list, no DIR/.catalog", ["list"], cold=True),
        Measure("list", "list (newest 50)", ["list"], LIST_TOP_TARGET),
        Measure(
            "list-json",
            f"list --json --limit 0 (all {total:,})",
            ["list", "--json", "--limit", "0"],
            LIST_TOP_TARGET,
        ),
        Measure(
            "list-path",
            "list --path '^/api/export' (0.5 % of reports)",
            ["list", "--path", "^/api/export"],
            LIST_TOP_TARGET,
        ),
        Measure("list-status", "list --status 5xx", ["list", "--status", "5xx"], LIST_TOP_TARGET),
        Measure(
            "list-label", f"list --label {MERGE_LABEL}", ["list", "--label", MERGE_LABEL], LIST_TOP_TARGET
        ),
        Measure(
            "list-changed",
            "list, one report added since the last command",
            ["list"],
            LIST_TOP_TARGET,
            touch=True,
        ),
        Measure("top", "top", ["top"], LIST_TOP_TARGET),
        Measure("top-v1", "top --label v1", ["top", "--label", "v1"], LIST_TOP_TARGET),
        Measure(
            "merge-html",
            f"merge --label {MERGE_LABEL}, html ({PER_LABEL} sessions)",
            ["merge", "--label", MERGE_LABEL, "-f", "html", "-o", "{out}/merged.html"],
            MERGE_TARGET,
        ),
        Measure(
            "merge-session",
            f"merge --label {MERGE_LABEL} -f session ({PER_LABEL} sessions)",
            ["merge", "--label", MERGE_LABEL, "-f", "session", "-o", "{out}/merged.pyisession"],
            MERGE_TARGET,
        ),
        Measure(
            "diff",
            f"diff label={MERGE_LABEL} label={DIFF_LABEL} ({PER_LABEL} + {PER_LABEL})",
            ["diff", f"label={MERGE_LABEL}", f"label={DIFF_LABEL}", "--no-progress"],
        ),
        Measure(
            "prune",
            f"prune --dry-run --max-reports {keep}",
            ["prune", "--dry-run", "--max-reports", str(keep)],
        ),
    ]


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "?"
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def report(results: list[Measure]) -> None:
    log()
    log("Wall time of each command, from start to exit (interpreter start included), in seconds;")
    log("CPU: the command's user + system time (median), which other processes on the machine affect less:")
    log()
    width = max(len(m.title) for m in results)
    log(f"{'command'.ljust(width)}  runs  median     max     CPU  target  result")
    log("-" * (width + 46))
    for m in results:
        target = f"< {m.target:g} s" if m.target is not None else "-"
        result = "FAILED" if m.failed else ("PASS" if m.passed else "FAIL") if m.target is not None else "-"
        figures = f"{len(m.times):4d}  {m.median:6.3f}  {m.worst:6.3f}  {m.cpu_median:6.3f}  {target:>6}"
        log(f"{m.title.ljust(width)}  {figures}  {result}")
    log()
    for m in results:
        if m.notes or m.failed:
            log(f"  {m.key}: {m.failed or '; '.join(m.notes)}")
    log()
    for m in results:
        if m.target is None:
            continue
        verdict = "FAILED" if m.failed else "PASS" if m.passed else "FAIL"
        log(f"{verdict}: {m.title} = {m.median:.3f} s median, {m.worst:.3f} s max (target < {m.target:g} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reports", type=int, default=100_000, help="reports to generate (default 100000)")
    parser.add_argument("--rounds", type=int, default=5, help="runs of each command (default 5)")
    parser.add_argument(
        "--cold-rounds", type=int, default=3, help="runs of the first catalog build (default 3)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="generate the reports in DIR and keep them; a DIR this script generated before (with the "
        "same --reports and --seed) is reused as it is",
    )
    parser.add_argument("--only", help="comma list of measurement keys to run (default all)")
    args = parser.parse_args(argv)
    if args.reports < 2 * PER_LABEL + 10:
        parser.error(f"--reports: at least {2 * PER_LABEL + 10}")
    if not os.access(CLI, os.X_OK):
        print(f"{CLI} not found: install the package first (make install)", file=sys.stderr)
        return 2
    now = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    log(f"date: {now}, {os.cpu_count()} CPUs, commit {commit()}")
    log(f"load average before: {loadavg()}")
    base = tempfile.mkdtemp(prefix="gpi-bench-catalog-")
    directory = os.path.abspath(args.keep) if args.keep else os.path.join(base, "reports")
    workdir = os.path.join(base, "out")
    os.makedirs(workdir)
    started = time.monotonic()
    failed = False
    try:
        made: dict[str, Any] | None = None
        with_marker = os.path.join(directory, MARKER)
        if os.path.exists(with_marker):
            with open(with_marker) as f:
                made = json.load(f)
            if (made or {}).get("reports") != args.reports or (made or {}).get("seed") != args.seed:
                print(f"{directory} holds another generated set ({made}): remove it first", file=sys.stderr)
                return 2
            log(f"reusing {made['reports']:,} reports in {directory}")
        elif os.path.isdir(directory) and os.listdir(directory):
            print(f"{directory} is not empty and was not generated by this script", file=sys.stderr)
            return 2
        else:
            log(f"generating {args.reports:,} reports in {directory} ...")
            t0 = time.perf_counter()
            made = generate(directory, args.reports, args.seed)
            log(f"  generated in {time.perf_counter() - t0:.1f} s")
        assert made is not None
        made.setdefault("added", 0)
        files, size = disk_usage(directory)
        counts = made["counts"]
        log(
            f"  {files:,} files, {size / 1e6:.0f} MB on disk (template sessions and pages hard-linked); "
            f"{counts['own_sessions']:,} sessions of their own, {counts['windows']} per-worker windows, "
            f"{counts['status_5xx']:,} 5xx, {counts['export']:,} /api/export; labels {counts['labels']}"
        )
        selected = set(args.only.split(",")) if args.only else None
        results = [m for m in measurements(made) if selected is None or m.key in selected]
        added = 0
        for m in results:
            if not m.cold and not m.touch:
                # Bring the index up to date first (an untimed run), as after any earlier change.
                settle(directory)
                subprocess.run([CLI, "--dir", directory, "list", "--limit", "1"], capture_output=True)
            runs = args.cold_rounds if m.cold else args.rounds
            for r in range(runs):
                try:
                    if m.touch:
                        added += 1
                    elapsed, cpu, out_path, stderr = run_once(m, directory, workdir, added)
                except Exception as exc:
                    m.failed = str(exc)
                    failed = True
                    break
                if m.touch:
                    made["added"] = added
                m.times.append(elapsed)
                m.cpu.append(cpu)
                if r == 0:
                    try:
                        check(m, out_path, stderr, made, workdir)
                    except Exception as exc:
                        m.failed = f"wrong output: {exc}"
                        failed = True
                        break
            walls = " ".join(f"{t:.3f}" for t in m.times)
            cpus = " ".join(f"{c:.2f}" for c in m.cpu)
            failure = f"  FAILED: {m.failed}" if m.failed else ""
            log(f"{m.key:<14} {walls} (CPU {cpus}; load average {loadavg()}){failure}")
        report(results)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        if args.keep and made is not None and made.get("added"):
            # The reports added by "list-changed" are not part of the generated set: drop them.
            for name in os.listdir(directory):
                if "-abcdef-" in name:
                    os.unlink(os.path.join(directory, name))
    log()
    log(f"Run time: {time.monotonic() - started:.0f} s; load average after: {loadavg()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
