"""The site's HTML: its style sheet, the page around every body, links, and the boxes and notes
that several pages show."""

from __future__ import annotations

import html
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from ..catalog import Catalog
from ..reading import compare

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
.chart { position: relative; margin: .5em 0 1.5em; min-height: 120px; }
.chart-controls { margin: .3em 0; font-size: 13px; }
.chart-controls label { margin-right: 1em; }
.tip { position: absolute; pointer-events: none; background: #fff; border: 1px solid #999;
  padding: 3px 6px; font-size: 12px; white-space: nowrap; z-index: 10; display: none; }
.flamegraph { margin: .5em 0 1em; border: 1px solid #e4e4e4; overflow: hidden; }
.flamegraph svg { display: block; width: 100%; }
.flamegraph g.frame { cursor: pointer; }
.flamegraph text { font: 11px monospace; pointer-events: none; }
.flame-bar { display: flex; flex-wrap: wrap; gap: .3em 1em; align-items: center; font-size: 13px;
  margin: .3em 0; }
.flame-bar > * { white-space: nowrap; }
.flame-bar .detail { flex: 1 1 100%; min-height: 1.3em; font-family: monospace; font-size: 12px;
  color: #333; white-space: normal; }
.legend span { display: inline-block; margin-right: 1.2em; font-size: 12px; }
.legend i { display: inline-block; width: .9em; height: .9em; vertical-align: middle; margin-right: .3em; }
.legend i.slower { background: hsl(5,80%,55%); }
.legend i.faster { background: hsl(215,75%,55%); }
.legend i.same { background: hsl(0,0%,88%); }
h2 { font-size: 16px; margin: 1em 0 .3em; }
.side-by-side { display: flex; flex-wrap: wrap; gap: 2em; align-items: flex-start; }
.side-by-side > div { flex: 1 1 30em; min-width: 0; }
svg.workers text { font: 11px monospace; fill: #444; }
svg.workers a rect.busy { fill: #d2603a; }
svg.workers a rect.idle { fill: #e8eef4; }
svg.workers a:hover rect { stroke: #222; }
"""
)

esc = html.escape


def link(path: str, params: Mapping[str, str] | None = None) -> str:
    """A URL of this site; empty parameters are left out."""
    kept = {k: v for k, v in (params or {}).items() if v != ""}
    return path + ("?" + urllib.parse.urlencode(kept) if kept else "")


def report_link(name: str) -> str:
    return "/report/" + urllib.parse.quote(name, safe="")


def flame_link(name: str) -> str:
    return "/flame/" + urllib.parse.quote(name, safe="")


def file_link(name: str, fmt: str) -> str:
    return f"/file/{urllib.parse.quote(name, safe='')}/{urllib.parse.quote(fmt, safe='')}"


def layout(title: str, body: str, selection: Mapping[str, str], assets: Sequence[str] = ()) -> bytes:
    """A page of the site; the navigation keeps the current selection. ``assets``: the URLs of the
    style sheets and scripts (``assets.url``) the page loads, in order."""
    nav = " ".join(
        f'<a id="nav-{key}" href="{esc(link(path, selection))}">{text}</a>'
        for key, path, text in (
            ("list", "/", "Reports"),
            ("top", "/top", "Endpoints"),
            ("chart", "/chart", "Latency"),
            ("diff", "/diff", "Compare"),
            ("workers", "/workers", "Workers"),
        )
    )
    head = "".join(
        f'<link rel="stylesheet" href="{esc(url)}">'
        if url.endswith(".css")
        else f'<script src="{esc(url)}" defer></script>'
        for url in assets
    )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · gunicorn-pyinstrument</title>"
        f'<link rel="icon" href="/static/icon.svg"><style>{STYLE}</style>{head}</head>'
        f'<body><nav class="site">{nav}</nav><h1>{esc(title)}</h1>{body}</body></html>'
    )
    return page.encode("utf-8")


def json_block(element_id: str, data: Any) -> str:
    """Data for the page's script, in the page: a JSON script element, which the browser never
    runs (so the security policy allows it); ``<`` escaped so no value can end the element."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")
    return f'<script type="application/json" id="{esc(element_id)}">{text}</script>'


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode("utf-8")


def error_box(message: str) -> str:
    return f'<p class="error" id="error">{esc(message)}</p>'


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
