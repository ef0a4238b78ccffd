"""The shop API whose reports the catalog benchmark reads: its call stacks, endpoints and sessions.

A Flask shop API served by ``gunicorn -w 4``: ten endpoints with ids in their paths (folded by
``top``), realistic durations and statuses, and pyinstrument Sessions of 50 to 200 samples at
``INTERVAL=0.001`` over a call stack 23 to 33 frames deep (gunicorn's sync worker, Flask, the view,
then SQLAlchemy, psycopg, Jinja, json, ...), each innermost frame seen at one of several lines, as
in real samples.
"""

from __future__ import annotations

import dataclasses
import random
import uuid

from pyinstrument.session import Session

INTERVAL = 0.001
LEAF_LINES = 6  # lines at which the innermost frame of a call chain is sampled
SITE = "/srv/shop/.venv/lib/python3.11/site-packages"
APP = "/srv/shop/shop"


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
