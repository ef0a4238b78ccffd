"""The local web page: ``gunicorn-pyinstrument serve``.

A small read-only site over the catalog, with the standard library's HTTP server only:

- ``/``: the reports, filtered (the selection keys of ``catalog.SELECTION_KEYS``), sorted, paged;
- ``/report/NAME``: pyinstrument's own HTML viewer for one report;
- ``/file/NAME/FORMAT``: one of the report's files, as a download;
- ``/top``: time per endpoint, each linking to ``/merge``, the endpoint's reports merged into one
  viewer;
- ``/diff?a=label=v1&b=label=v2``: two selections compared function by function.

Only what the catalog lists is ever read: a name from the request is checked, looked up in the
catalog, and the file names come from the report's metadata record, never from the request. The
server binds 127.0.0.1 by default and, bound to a loopback address, answers only requests that
name a loopback host (a web page elsewhere cannot reach it by rebinding a DNS name to
127.0.0.1). Every page is sent with a Content-Security-Policy: the site's own pages run no
script at all, and the viewer runs only pyinstrument's two inline scripts (checked, then allowed
by their hashes). Nothing is loaded from elsewhere: the viewer's web font (from Google Fonts) is
refused, and it shows in the browser's own fonts.

Each request opens its own Catalog (sqlite3 connections are not shared between threads), which
brings the index up to date first, so new reports appear on the next page load.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import html
import ipaddress
import json
import os
import re
import shutil
import socket
import socketserver
import stat
import sys
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, BinaryIO

from .catalog import ORDERS, SELECTION_KEYS, TOP_ORDERS, Catalog, CatalogError, Entry, Query, top
from .cli import PROG, iso
from .directory import FORMAT_SUFFIXES
from .reading import compare
from .stores.local import check_name

#: Rows per page of the report list, by default and at most.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
#: Rows of the comparison table, by default.
DIFF_ROWS = 200
#: A merge, or one side of a diff, takes at most this many reports (the newest): loading sessions
#: is the slow part, and a page should answer in seconds.
MERGE_LIMIT = 1000
#: Longer request targets are refused before anything else is done with them.
MAX_TARGET = 8192
#: At most this many query parameters (the longest form has a dozen).
MAX_FIELDS = 64
#: Idle keep-alive connections are closed after this many seconds (each holds a thread).
IDLE_SECONDS = 30

CONTENT_TYPES = {
    "session": "application/json",
    "speedscope": "application/json",
    "html": "text/html; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "pstats": "application/octet-stream",
}
HTML_TYPE = "text/html; charset=utf-8"

#: Columns of the report list: key, heading, the catalog.ORDERS key that sorts by it (or None).
LIST_COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("time", "time (UTC)", "time"),
    ("method", "method", "method"),
    ("path", "path", "path"),
    ("status", "status", "status"),
    ("duration", "ms", "duration"),
    ("label", "label", "label"),
    ("worker", "worker", None),
    ("samples", "samples", "samples"),
    ("files", "files", None),
    ("name", "name", "name"),
)
NUMERIC_COLUMNS = {"status", "duration", "samples"}
#: Sort keys whose first click shows the largest (or newest) first.
DESCENDING_FIRST = {"time", "duration", "status", "samples"}

#: Labels and hints of the filter form's fields, by selection key.
FIELDS: dict[str, tuple[str, str]] = {
    "path": ("path", "regex: ^/api/"),
    "method": ("method", "GET"),
    "status": ("status", "200 or 5xx"),
    "min_duration": ("min duration", "250ms"),
    "label": ("label", "v1"),
    "since": ("since", "10m, 2h or ISO time"),
    "until": ("until", "ISO time or age"),
    "worker": ("worker", "pid or PID-INSTANCE"),
    "kind": ("kind", ""),
    "endpoint": ("endpoint", "GET /users/{n}"),
}
KINDS = ("", "request", "worker")

STYLE = (
    compare.STYLE
    + """
body { margin: 1em 2em; }
h1 { font-size: 20px; margin: .5em 0; }
nav.site a { margin-right: 1.2em; font-weight: 600; }
form.filters { display: flex; flex-wrap: wrap; gap: .4em .8em; align-items: flex-end; margin: 1em 0;
  padding: .6em; background: #fafafa; border: 1px solid #e4e4e4; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: #555; }
form.filters input, form.filters select, form.filters button { font: inherit; padding: 2px 4px; }
form.filters input.wide { width: 22em; }
p.error { color: #b00020; border: 1px solid #b00020; background: #fff3f3; padding: .5em 1em; }
p.note, span.muted { color: #666; }
table.list th, table.list td { text-align: left; }
table.list th.num, table.list td.num { text-align: right; }
td.name { font-family: monospace; font-size: 12px; color: #666; }
th a { color: inherit; }
a.file { margin-right: .5em; font-size: 12px; }
nav.pages { margin: 1em 0; }
nav.pages a { margin: 0 1em; }
"""
)


def _sha256(data: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode("ascii") + "'"


#: The site's own pages: no script at all, the one style sheet above (by its hash), forms and
#: links to this origin only.
PAGE_CSP = (
    f"default-src 'none'; style-src {_sha256(STYLE.encode('utf-8'))}; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
#: Downloads: never run as a page of this origin.
FILE_CSP = "default-src 'none'; sandbox"
#: Everything; the viewer's script hashes are added per document (see viewer_csp).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


# --- pyinstrument's viewer: which inline scripts may run ---

# A script element's text ends at the first "</script" followed by a space, "/" or ">"
# (the HTML tokenizer's rule); the viewer's scripts have no attributes.
_SCRIPT = re.compile(rb"<script>(.*?)</script[\t\n\f\r />]", re.DOTALL | re.IGNORECASE)
_BOOTSTRAP = re.compile(
    rb"\s*const sessionData = (?P<data>.*);\s*"
    rb"pyinstrumentHTMLRenderer\.render\(document\.getElementById\('app'\), sessionData\);\s*",
    re.DOTALL,
)


def viewer_scripts(document: bytes) -> list[bytes]:
    """The inline scripts of a pyinstrument HTML page that may run: the app bundle (the page's
    first script) and the bootstrap that hands it the session, only if the session is one JSON
    value. A path or name in the session that closed the script element early (pyinstrument
    does not escape ``</script>`` in its JSON) leaves a bootstrap that fails this check and a
    stray script after it that is not the first: neither runs."""
    # The browser reads CR LF and lone CR as LF before anything else: so must the hashes.
    text = document.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    scripts = [m.group(1) for m in _SCRIPT.finditer(text)]
    allowed = scripts[:1]
    for script in scripts[1:]:
        match = _BOOTSTRAP.fullmatch(script)
        if match is None:
            continue
        try:
            json.loads(match.group("data"))
        except ValueError:
            continue
        allowed.append(script)
    return allowed


def viewer_csp(document: bytes) -> str:
    """The Content-Security-Policy of one viewer page: its own scripts by hash, inline styles
    (the viewer sets style attributes), data: images (its logo); nothing from elsewhere."""
    hashes = sorted({_sha256(script) for script in viewer_scripts(document)})
    scripts = " ".join(hashes) or "'none'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


def script_safe(text: str) -> str:
    """Text for a session field of a page this server renders: no ``<`` followed directly by
    ``/`` or ``!`` (a word joiner, invisible, after every ``<``), so it cannot end the script."""
    return text.replace("<", "<\u2060")


# --- requests: targets, parameters, hosts ---


class HTTPError(Exception):
    """An answer other than 200, with a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def split_target(target: str) -> tuple[list[str], str]:
    """The decoded path segments and the raw query string of a request target.

    The path is split on ``/`` before decoding, so ``%2F`` stays inside its segment (and a name
    holding it is refused later, as any name the catalog does not list)."""
    if len(target) > MAX_TARGET:
        raise HTTPError(400, f"request target longer than {MAX_TARGET} characters")
    raw_path, _, query = target.partition("?")
    query = query.partition("#")[0]
    if not raw_path.startswith("/"):
        raise HTTPError(404, "not found")
    try:
        parts = [urllib.parse.unquote(p, errors="strict") for p in raw_path[1:].split("/")]
    except UnicodeDecodeError:
        raise HTTPError(400, "bad percent-encoding in the path (not UTF-8)") from None
    return parts, query


def parse_params(query: str) -> dict[str, str]:
    """Query parameters, the last value of a repeated one winning."""
    try:
        pairs = urllib.parse.parse_qsl(
            query, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS
        )
    except UnicodeDecodeError:
        raise HTTPError(400, "bad percent-encoding in the query (not UTF-8)") from None
    except ValueError:
        raise HTTPError(400, f"more than {MAX_FIELDS} query parameters") from None
    return dict(pairs)


def host_allowed(host_header: str | None, bound_host: str) -> bool:
    """Is the Host header one this server answers to? Bound to a loopback address, only loopback
    names and addresses (a DNS name rebound to 127.0.0.1 by a web page is refused); bound
    elsewhere, any."""
    if not is_loopback(bound_host) or host_header is None:
        return True
    host = host_header.strip().lower()
    if host.startswith("["):
        host = host[1 : host.find("]")] if "]" in host else ""
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    host = host.rstrip(".")
    return host == "localhost" or host == bound_host.lower() or is_loopback(host)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_number(params: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    text = params.get(key, "").strip()
    if not text:
        return default
    if not re.fullmatch(r"\d{1,9}", text) or not low <= int(text) <= high:
        raise ValueError(f"{key} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def check_keys(params: Mapping[str, str], extra: Iterable[str]) -> None:
    allowed = set(SELECTION_KEYS) | set(extra)
    for key in params:
        if key not in allowed:
            raise ValueError(f"unknown parameter {key!r}: expected one of {', '.join(sorted(allowed))}")


def selection_values(params: Mapping[str, str]) -> dict[str, str]:
    """The selection as typed (the form's values), empty ones left out."""
    return {k: params[k] for k in SELECTION_KEYS if params.get(k, "").strip()}


def parse_selection(values: Mapping[str, str], base: Query) -> Query:
    """``Query.parse``, with the field that is wrong named in the message."""
    for key, text in values.items():
        if key in SELECTION_KEYS:
            try:
                SELECTION_KEYS[key](text.strip())
            except ValueError as exc:
                raise ValueError(f"{FIELDS.get(key, (key,))[0]}: {exc}") from None
    return Query.parse(dict(values), base)


@dataclass(frozen=True)
class ListControls:
    sort: str = "time"
    descending: bool = True
    limit: int = DEFAULT_LIMIT
    offset: int = 0


def list_controls(params: Mapping[str, str]) -> ListControls:
    sort = params.get("sort") or "time"
    if sort not in ORDERS:
        raise ValueError(f"cannot sort by {sort!r}: expected one of {', '.join(ORDERS)}")
    order = params.get("order") or ("desc" if sort in DESCENDING_FIRST else "asc")
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be asc or desc, not {order!r}")
    return ListControls(
        sort=sort,
        descending=order == "desc",
        limit=parse_number(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
        offset=parse_number(params, "offset", 0, 0, 10**9),
    )


def describe(query: Query) -> list[str]:
    """A query's fields as ``key=value`` text (the form's syntax)."""
    words = []
    for key, value in query.fields().items():
        if isinstance(value, re.Pattern):
            text = value.pattern
        elif key in ("since", "until"):
            text = iso(value).replace(" ", "T") + "Z"
        elif key == "min_duration":
            text = f"{value:g}s"
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        words.append(f"{key}={text}")
    return words


# --- HTML ---

esc = html.escape


def link(path: str, params: Mapping[str, str] | None = None) -> str:
    """A URL of this site; empty parameters are left out."""
    kept = {k: v for k, v in (params or {}).items() if v != ""}
    return path + ("?" + urllib.parse.urlencode(kept) if kept else "")


def report_link(name: str) -> str:
    return "/report/" + urllib.parse.quote(name, safe="")


def file_link(name: str, fmt: str) -> str:
    return f"/file/{urllib.parse.quote(name, safe='')}/{urllib.parse.quote(fmt, safe='')}"


def layout(title: str, body: str, selection: Mapping[str, str]) -> bytes:
    """A page of the site; the navigation keeps the current selection."""
    nav = " ".join(
        f'<a id="nav-{key}" href="{esc(link(path, selection))}">{text}</a>'
        for key, path, text in (
            ("list", "/", "Reports"),
            ("top", "/top", "Endpoints"),
            ("diff", "/diff", "Compare"),
        )
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · gunicorn-pyinstrument</title><style>{STYLE}</style></head>"
        f'<body><nav class="site">{nav}</nav><h1>{esc(title)}</h1>{body}</body></html>'
    )
    return page.encode("utf-8")


def error_box(message: str) -> str:
    return f'<p class="error" id="error">{esc(message)}</p>'


def filter_form(action: str, values: Mapping[str, str], hidden: Mapping[str, str], before: str = "") -> str:
    """The selection form: one field per selection key; ``hidden`` keeps the page's other
    controls (sorting) across a new filter; ``before`` adds fields of the page's own."""
    fields = [before]
    for key in SELECTION_KEYS:
        text, hint = FIELDS.get(key, (key.replace("_", " "), ""))
        value = values.get(key, "")
        if key == "kind":
            options = "".join(
                f'<option value="{k}"{" selected" if k == value else ""}>{k or "any"}</option>' for k in KINDS
            )
            control = f'<select id="f-{key}" name="{key}">{options}</select>'
        else:
            wide = ' class="wide"' if key in ("path", "endpoint") else ""
            control = (
                f'<input id="f-{key}" name="{key}" value="{esc(value)}" placeholder="{esc(hint)}"{wide}>'
            )
        fields.append(f"<label>{esc(text)}{control}</label>")
    fields += [f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in hidden.items() if v]
    fields.append('<button type="submit" id="apply">Apply</button>')
    fields.append(f'<a href="{esc(action)}" id="clear">clear</a>')
    return f'<form class="filters" id="filters" method="get" action="{esc(action)}">{"".join(fields)}</form>'


def defaults_note(base: Query) -> str:
    words = describe(base)
    if not words:
        return ""
    return (
        '<p class="note" id="defaults">Selection from the command line: '
        + ", ".join(f"<code>{esc(w)}</code>" for w in words)
        + " (a value in the form replaces it).</p>"
    )


def unreadable_note(cat: Catalog) -> str:
    if not cat.unreadable:
        return ""
    items = "".join(
        f"<li>{esc(name)}: {esc(reason)}</li>" for name, reason in list(cat.unreadable.items())[:20]
    )
    return (
        f'<details class="note" id="unreadable"><summary>{len(cat.unreadable)} metadata record(s) '
        f"could not be read and are skipped</summary><ul>{items}</ul></details>"
    )


# --- responses ---


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = HTML_TYPE
    csp: str = PAGE_CSP
    headers: dict[str, str] = field(default_factory=dict)
    file: BinaryIO | None = None  # sent instead of body, ``length`` bytes
    length: int = 0


def page(status: int, title: str, body: str, selection: Mapping[str, str]) -> Response:
    return Response(status, layout(title, body, selection))


def error_response(status: int, message: str) -> Response:
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    return page(status, title, error_box(message) + '<p><a href="/">All reports</a></p>', {})


def viewer_response(document: bytes) -> Response:
    return Response(200, document, csp=viewer_csp(document))


def content_disposition(filename: str) -> str:
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"


# --- pages ---


def lookup(cat: Catalog, name: str) -> Entry:
    """The catalog's entry of a report name from a request; 404 for anything else."""
    shown = name if len(name) <= 120 else name[:120] + "…"
    try:
        check_name(name)
    except ValueError:
        raise HTTPError(404, f"no report named {shown!r}") from None
    entry = cat.get(name)
    if entry is None:
        raise HTTPError(404, f"no report named {shown!r}")
    return entry


def open_report_file(cat: Catalog, entry: Entry, fmt: str) -> tuple[BinaryIO, int] | None:
    """One of the report's files, open, and its size; None if it has no such file (any more).
    The name comes from the catalog; the file must be a regular file, not a link to one."""
    try:
        path = cat.file_path(entry, fmt)
    except ValueError:
        return None
    if path is None:
        return None
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK  # NONBLOCK: no wait on a FIFO
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            return None
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def list_page(cat: Catalog, params: Mapping[str, str], base: Query) -> Response:
    values = selection_values(params)
    hidden = {k: params.get(k, "") for k in ("sort", "order", "limit")}
    try:
        check_keys(params, ("sort", "order", "limit", "offset"))
        query = parse_selection(values, base)
        controls = list_controls(params)
    except ValueError as exc:
        body = error_box(str(exc)) + filter_form("/", values, hidden) + defaults_note(base)
        return page(400, "Reports", body, values)
    end = controls.offset + controls.limit
    entries = cat.entries(query, order=controls.sort, descending=controls.descending, limit=end + 1)
    shown = entries[controls.offset : end]
    count, size = cat.totals()
    parts = [filter_form("/", values, hidden), defaults_note(base), unreadable_note(cat)]
    summary = f"{count} report(s), {size / 1e6:.1f} MB in {cat.directory}. "
    if shown:
        summary += f"Showing {controls.offset + 1}–{controls.offset + len(shown)} of the matching reports."
    parts.append(f'<p class="note" id="summary">{esc(summary)}</p>')
    if not shown:
        parts.append('<p id="empty">No report matches the selection.</p>')
    else:
        parts.append(list_table(shown, values, controls))
    pager = []
    if controls.offset > 0:
        previous = max(0, controls.offset - controls.limit)
        pager.append(
            f'<a id="prev" href="{esc(link("/", page_params(values, controls, previous)))}">← previous</a>'
        )
    if len(entries) > end:
        pager.append(f'<a id="next" href="{esc(link("/", page_params(values, controls, end)))}">next →</a>')
    if pager:
        parts.append(f'<nav class="pages">{"".join(pager)}</nav>')
    return page(200, "Reports", "".join(parts), values)


def page_params(values: Mapping[str, str], controls: ListControls, offset: int) -> dict[str, str]:
    params = dict(values)
    params["sort"] = controls.sort
    params["order"] = "desc" if controls.descending else "asc"
    if controls.limit != DEFAULT_LIMIT:
        params["limit"] = str(controls.limit)
    if offset:
        params["offset"] = str(offset)
    return params


def list_table(entries: list[Entry], values: Mapping[str, str], controls: ListControls) -> str:
    heads = []
    for key, text, order in LIST_COLUMNS:
        cls = ' class="num"' if key in NUMERIC_COLUMNS else ""
        if order is None:
            heads.append(f"<th{cls}>{esc(text)}</th>")
            continue
        current = controls.sort == order
        if current:
            descending = not controls.descending  # a click on the current column turns it round
            arrow = " ▼" if controls.descending else " ▲"
            aria = f' aria-sort="{"descending" if controls.descending else "ascending"}"'
        else:
            descending, arrow, aria = order in DESCENDING_FIRST, "", ""
        params = {**values, "sort": order, "order": "desc" if descending else "asc"}
        if controls.limit != DEFAULT_LIMIT:
            params["limit"] = str(controls.limit)
        heads.append(
            f'<th{cls} data-sort="{order}"{aria}><a class="sort" href="{esc(link("/", params))}">'
            f"{esc(text)}{arrow}</a></th>"
        )
    rows = []
    for e in entries:
        files = " ".join(
            f'<a class="file" data-format="{esc(fmt)}" href="{esc(file_link(e.name, fmt))}">{esc(fmt)}</a>'
            for fmt in sorted(e.files, key=_format_rank)
            if fmt in CONTENT_TYPES
        )
        rows.append(
            f'<tr data-name="{esc(e.name)}" data-duration="{e.duration!r}">'
            f'<td class="time">{esc(iso(e.start))}</td>'
            f'<td class="method">{esc(e.method or "WORKER")}</td>'
            f'<td class="path"><a class="view" href="{esc(report_link(e.name))}">'
            f"{esc(e.path if e.path is not None else '(window)')}</a></td>"
            f'<td class="num status">{"" if e.status is None else e.status}</td>'
            f'<td class="num duration">{e.duration * 1000:.1f}</td>'
            f'<td class="label">{esc(e.label or "")}</td>'
            f'<td class="worker">{esc(e.worker)}</td>'
            f'<td class="num samples">{e.samples}</td>'
            f'<td class="files">{files}</td>'
            f'<td class="name">{esc(e.name)}</td></tr>'
        )
    return (
        f'<table id="reports" class="list"><thead><tr>{"".join(heads)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _format_rank(fmt: str) -> int:
    order = list(FORMAT_SUFFIXES)
    return order.index(fmt) if fmt in order else len(order)


def top_page(cat: Catalog, params: Mapping[str, str], base: Query) -> Response:
    values = selection_values(params)
    hidden = {"sort": params.get("sort", "")}
    try:
        check_keys(params, ("sort",))
        query = parse_selection(values, base)
        sort = params.get("sort") or "total"
        if sort not in TOP_ORDERS:
            raise ValueError(f"cannot sort by {sort!r}: expected one of {', '.join(TOP_ORDERS)}")
    except ValueError as exc:
        body = error_box(str(exc)) + filter_form("/top", values, hidden) + defaults_note(base)
        return page(400, "Endpoints", body, values)
    stats = top(cat.entries(dataclasses.replace(query, kind="request")), sort)
    parts = [filter_form("/top", values, hidden), defaults_note(base), unreadable_note(cat)]
    if not stats:
        parts.append('<p id="empty">No request report matches the selection.</p>')
        return page(200, "Endpoints", "".join(parts), values)
    parts.append(
        '<p class="note">Per endpoint (method and path, ids folded): time in milliseconds, total in '
        "seconds. An endpoint opens its reports merged into one profile.</p>"
    )
    heads = ['<th class="name">endpoint</th>']
    for key, text in (
        ("count", "count"),
        ("p50", "p50 ms"),
        ("p95", "p95 ms"),
        ("max", "max ms"),
        ("total", "total s"),
    ):
        arrow = " ▼" if key == sort else ""
        aria = ' aria-sort="descending"' if key == sort else ""
        href = link("/top", {**values, "sort": key})
        heads.append(f'<th data-sort="{key}"{aria}><a class="sort" href="{esc(href)}">{text}{arrow}</a></th>')
    heads.append("<th></th>")
    rows = []
    others = {k: v for k, v in values.items() if k != "endpoint"}
    for s in stats:
        merge = link("/merge", {"endpoint": s.endpoint, **others})
        listing = link("/", {"endpoint": s.endpoint, **others})
        rows.append(
            f'<tr data-endpoint="{esc(s.endpoint)}"><td class="name">'
            f'<a class="merge" href="{esc(merge)}">{esc(s.endpoint)}</a></td>'
            f"<td>{s.count}</td><td>{s.p50 * 1000:.1f}</td><td>{s.p95 * 1000:.1f}</td>"
            f"<td>{s.max * 1000:.1f}</td><td>{s.total:.3f}</td>"
            f'<td><a class="reports" href="{esc(listing)}">reports</a></td></tr>'
        )
    parts.append(
        f'<table id="top"><thead><tr>{"".join(heads)}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    return page(200, "Endpoints", "".join(parts), values)


def newest(cat: Catalog, query: Query) -> tuple[list[Entry], bool]:
    """The newest MERGE_LIMIT matching reports, and whether there were more."""
    entries = cat.entries(query, order="time", descending=True, limit=MERGE_LIMIT + 1)
    return entries[:MERGE_LIMIT], len(entries) > MERGE_LIMIT


def merge_page(cat: Catalog, params: Mapping[str, str], base: Query) -> Response:
    from .aggregate import merge_sessions
    from .formats import render

    values = selection_values(params)
    try:
        check_keys(params, ())
        query = parse_selection(values, base)
    except ValueError as exc:
        raise HTTPError(400, str(exc)) from None
    entries, more = newest(cat, query)
    if not entries:
        raise HTTPError(404, "no report matches the selection")
    sessions = list(cat.sessions(entries, lambda entry, reason: None))
    if not sessions:
        raise HTTPError(404, "none of the selected reports could be read")
    what = query.endpoint or ", ".join(describe(query)) or "all reports"
    description = f"{what}: {len(sessions)} report(s) merged"
    if more:
        description += f" (the newest {MERGE_LIMIT})"
    return viewer_response(render(merge_sessions(sessions, script_safe(description)), "html"))


def diff_page(cat: Catalog, params: Mapping[str, str], base: Query) -> Response:
    a_text, b_text = params.get("a", "").strip(), params.get("b", "").strip()
    values = selection_values(params)
    sides = (
        '<label>A (before)<input id="diff-a" name="a" class="wide" '
        f'value="{esc(a_text)}" placeholder="label=v1"></label>'
        '<label>B (after)<input id="diff-b" name="b" class="wide" '
        f'value="{esc(b_text)}" placeholder="label=v2"></label>'
    )
    form = filter_form("/diff", values, {"limit": params.get("limit", "")}, before=sides)
    help_text = (
        '<p class="note">Each side is <code>KEY=VALUE[,KEY=VALUE...]</code> (<code>label=v1</code>, '
        "<code>label=v2,path=^/api</code>) or a report name; the fields below apply to both sides. "
        f"Each side takes its newest {MERGE_LIMIT} reports at most.</p>"
    )

    def answer(status: int, body: str) -> Response:
        return Response(status, layout("Compare", form + help_text + defaults_note(base) + body, values))

    if not a_text and not b_text:
        return answer(200, "")
    try:
        check_keys(params, ("a", "b", "limit"))
        if not a_text or not b_text:
            raise ValueError("give both sides, A and B")
        common = parse_selection(values, base)
        side_a, side_b = common.narrowed(a_text), common.narrowed(b_text)
        limit = parse_number(params, "limit", DIFF_ROWS, 1, 100_000)
    except ValueError as exc:
        return answer(400, error_box(str(exc)))
    profiles = []
    skipped: list[str] = []
    for query, name in ((side_a, a_text), (side_b, b_text)):
        entries, _ = newest(cat, query)
        if not entries:
            return answer(404, error_box(f"no report matches {name!r}"))
        result = compare.profile(cat.sessions(entries, lambda entry, reason: skipped.append(entry.name)))
        if not result.reports:
            return answer(404, error_box(f"none of the reports of {name!r} could be read"))
        profiles.append(result)
    table = compare.html_table(compare.diff(profiles[0], profiles[1]), a_text, b_text, limit)
    note = (
        f'<p class="note">{len(skipped)} report(s) could not be read and are left out.</p>' if skipped else ""
    )
    return answer(200, note + table)


def report_page(cat: Catalog, name: str) -> Response:
    entry = lookup(cat, name)
    opened = open_report_file(cat, entry, "html")
    if opened is not None:
        with opened[0] as f:
            return viewer_response(f.read())
    if "session" not in entry.files:
        raise HTTPError(404, f"report {name!r} has no HTML file and no session to render one from")
    from .formats import render

    try:
        session = cat.load_session(entry)
    except FileNotFoundError:
        raise HTTPError(404, f"the files of report {name!r} are gone") from None
    except Exception as exc:
        raise HTTPError(500, f"cannot read the session of {name!r}: {exc}") from None
    return viewer_response(render(session, "html"))


def file_response(cat: Catalog, name: str, fmt: str) -> Response:
    entry = lookup(cat, name)
    if fmt not in entry.files or fmt not in CONTENT_TYPES:
        raise HTTPError(404, f"report {name!r} has no {fmt!r} file")
    opened = open_report_file(cat, entry, fmt)
    if opened is None:
        raise HTTPError(404, f"the {fmt!r} file of report {name!r} is gone")
    f, size = opened
    filename = entry.files[fmt]
    headers = {"Content-Disposition": content_disposition(filename)}
    return Response(200, content_type=CONTENT_TYPES[fmt], csp=FILE_CSP, headers=headers, file=f, length=size)


Page = Callable[[Catalog, Mapping[str, str], Query], Response]
PAGES: dict[str, Page] = {"": list_page, "top": top_page, "merge": merge_page, "diff": diff_page}


# --- the server ---


class WebServer(ThreadingHTTPServer):
    """The page's server: one thread per connection, nothing shared between them but settings."""

    daemon_threads = True  # a browser's idle keep-alive connection never holds up shutdown

    def __init__(self, address: tuple[str, int], directory: str, query: Query) -> None:
        self.directory = directory
        self.base_query = query
        self.host = address[0]
        if ":" in self.host:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's fully qualified name: a DNS query we need not wait for.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.host
        self.server_port = int(self.server_address[1])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # An error outside the request handler proper (a connection reset mid-read): one line.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            log(f"error on a connection from {client_address[0]}: {one_line(exc)}")


def one_line(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def log(message: str) -> None:
    print(f"{PROG} serve: {message}", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    server: WebServer
    protocol_version = "HTTP/1.1"
    # Answers to requests too malformed to have a version still get a status line (HTTP/0.9 has none).
    default_request_version = "HTTP/1.0"
    server_version = "gunicorn-pyinstrument"
    timeout = IDLE_SECONDS

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def _not_allowed(self) -> None:
        self.close_connection = True  # the request's body, if any, is never read
        response = error_response(405, f"method {self.command} not allowed: this page is read-only")
        response.headers["Allow"] = "GET, HEAD"
        self._send(response, head=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request (errors are logged by :meth:`_handle`)."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The server's own refusals (a malformed request line, headers too large, an unknown
        method) as the site's error page, with its headers."""
        self.close_connection = True
        try:
            text = message or HTTPStatus(code).description or HTTPStatus(code).phrase
        except ValueError:
            text = message or "error"
        self._send(error_response(code, text), head=self.command == "HEAD")

    def _handle(self, head: bool) -> None:
        if (
            self.headers.get("Content-Length", "0").strip() not in ("", "0")
            or "Transfer-Encoding" in self.headers
        ):
            self.close_connection = True  # a body we do not read must not be taken for a request
        try:
            response = self._dispatch()
        except HTTPError as exc:
            response = error_response(exc.status, exc.message)
        except CatalogError as exc:  # the directory is gone or unreadable: say which
            log(f"error in {self.command} {self.path[:200]!r}: {exc}")
            response = error_response(500, str(exc))
        except Exception as exc:
            log(f"error in {self.command} {self.path[:200]!r}: {one_line(exc)}")
            response = error_response(500, "internal error (logged on the server's standard error)")
        self._send(response, head)

    def _dispatch(self) -> Response:
        if not host_allowed(self.headers.get("Host"), self.server.host):
            raise HTTPError(400, "this server answers only to localhost and loopback addresses")
        parts, raw_query = split_target(self.path)
        route = parts[0]
        if len(parts) == 1 and route in PAGES:
            params = parse_params(raw_query)
            with Catalog(self.server.directory) as cat:
                return PAGES[route](cat, params, self.server.base_query)
        if route == "report" and len(parts) == 2:
            with Catalog(self.server.directory) as cat:
                return report_page(cat, parts[1])
        if route == "file" and len(parts) == 3:
            with Catalog(self.server.directory) as cat:
                return file_response(cat, parts[1], parts[2])
        raise HTTPError(404, "not found")

    def _send(self, response: Response, head: bool) -> None:
        try:
            self.send_response(response.status)
            length = response.length if response.file is not None else len(response.body)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(length))
            self.send_header("Content-Security-Policy", response.csp)
            for name, value in (SECURITY_HEADERS | response.headers).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if head:
                return
            if response.file is not None:
                shutil.copyfileobj(response.file, self.wfile)
            else:
                self.wfile.write(response.body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away: nothing to tell it
        finally:
            if response.file is not None:
                response.file.close()


def make_server(
    directory: str, host: str = "127.0.0.1", port: int = 0, query: Query | None = None
) -> WebServer:
    """A server for the reports of ``directory``, bound and listening (port 0: any free port),
    not yet serving: call ``serve_forever()`` (in a thread, for tests), then ``shutdown()`` and
    ``server_close()``. Raises CatalogError if the directory cannot be read."""
    directory = os.path.abspath(directory)
    Catalog(directory).close()  # a missing directory is said now, in one line, not on every page
    return WebServer((host, port), directory, query or Query())


def serve(directory: str, host: str, port: int, query: Query, out: IO[str]) -> None:
    """Serve the page until Ctrl-C."""
    try:
        server = make_server(directory, host, port, query)
    except OSError as exc:
        print(f"{PROG}: error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(2) from None
    with server:
        print(f"serving {server.directory} at {server.url} (Ctrl-C to stop)", file=out, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
