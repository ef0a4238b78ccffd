"""The site's HTML: its style sheet, the page around every body, links, and the boxes and notes
that several pages show."""

from __future__ import annotations

import html
import urllib.parse
from collections.abc import Mapping

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
"""
)

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
