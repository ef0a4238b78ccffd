"""Flame graphs, drawn in the browser by the site's own viewer (``static/flame.js``) from this
server's data: ``/flame/NAME`` (one report) and ``/flame?...`` (a selection's reports merged, as
``/merge``), with their data at ``/data/flame/NAME`` and ``/data/flame?...``.

No profile leaves the machine: the page, its script and its data all come from this server."""

from __future__ import annotations

from collections.abc import Mapping

from ...catalog import Catalog, Query
from ..assets import url
from ..flamegraph import tree_of
from ..form import check_keys, describe, parse_selection, selection_values
from ..layout import esc, file_link, flame_link, layout, link, report_link
from ..response import HTTPError, Response, json_response
from .merge import MERGE_LIMIT, newest
from .report import load_session, lookup

SCRIPTS = ("common.js", "flame.js")


def viewer(source: str, links: str) -> str:
    """The viewer's controls and its drawing area, which loads its tree from ``source``."""
    return (
        '<div class="flame-bar"><button type="button" id="flame-reset">reset zoom</button>'
        '<input id="flame-search" placeholder="highlight: function or file">'
        f'{links}<span class="detail" id="flame-detail"></span></div>'
        f'<div class="flamegraph" id="flame" data-src="{esc(source)}"></div>'
        '<p class="note">Callers above, callees below; width: time (the frame and what it calls). '
        "Click a frame to zoom into it; click it again, or a caller above it, to zoom out. Orange: the "
        "app's code; blue: libraries; grey: built-ins. Hover a frame for its file and times.</p>"
    )


def flame_report_page(cat: Catalog, name: str) -> Response:
    entry = lookup(cat, name)
    if "session" not in entry.files:
        raise HTTPError(404, f"report {name!r} has no session to draw a flame graph from")
    what = f"{entry.method} {entry.path}" if entry.kind == "request" else f"worker {entry.worker} window"
    links = f'<a id="flame-calltree" href="{esc(report_link(name))}">call tree</a>'
    if "speedscope" in entry.files:
        links += f' <a href="{esc(file_link(name, "speedscope"))}">speedscope file</a>'
    body = f'<p class="note">{esc(what)}, {entry.duration * 1000:.1f} ms, {esc(name)}</p>' + viewer(
        "/data" + flame_link(name), links
    )
    assets = [url(s) for s in SCRIPTS]
    return Response(200, layout("Flame graph", body, {}, assets))


def flame_report_data(cat: Catalog, name: str) -> Response:
    return json_response(tree_of([load_session(cat, lookup(cat, name))]).to_json())


def _selection(params: Mapping[str, str], base: Query) -> tuple[dict[str, str], Query]:
    values = selection_values(params)
    try:
        check_keys(params, ())
        return values, parse_selection(values, base)
    except ValueError as exc:
        raise HTTPError(400, str(exc)) from None


def flame_selection_page(cat: Catalog, params: Mapping[str, str], base: Query) -> Response:
    values, query = _selection(params, base)
    entries, more = newest(cat, query)
    if not entries:
        raise HTTPError(404, "no report matches the selection")
    what = query.endpoint or ", ".join(describe(query)) or "all reports"
    count = f"the newest {MERGE_LIMIT}" if more else str(len(entries))
    links = f'<a id="flame-calltree" href="{esc(link("/merge", values))}">call tree</a>'
    body = f'<p class="note">{esc(what)}: {count} report(s) merged.</p>' + viewer(
        link("/data/flame", values), links
    )
    return Response(200, layout("Flame graph", body, values, [url(s) for s in SCRIPTS]))


def flame_selection_data(cat: Catalog, params: Mapping[str, str], base: Query) -> Response:
    _, query = _selection(params, base)
    entries, _ = newest(cat, query)
    tree = tree_of(cat.sessions(entries, lambda entry, reason: None))
    if not tree.reports[0]:
        raise HTTPError(404, "no report of the selection could be read")
    return json_response(tree.to_json())
