"""``/diff?a=label=v1&b=label=v2``: two selections compared: their durations' distributions side
by side (percentile curves, ``static/diff.js``), a differential flame graph of the merged profiles
with each frame coloured by the change in its self time (``static/flame.js``), and beside them the
table of functions, which got slower and which got faster (``reading/compare.py``).

The page computes everything once and hands the charts their data in the page itself (a JSON
element, never run as a script): loading the sessions is the slow part, and it is done once."""

from __future__ import annotations

from collections.abc import Mapping

from ...catalog import Catalog, Entry, Query, percentile
from ...reading import compare
from ..assets import url
from ..flamegraph import diff_tree
from ..form import check_keys, defaults_note, filter_form, parse_selection, selection_values
from ..layout import error_box, esc, json_block, layout
from ..request import parse_number
from ..response import Response
from .merge import MERGE_LIMIT, newest

#: Rows of the comparison table, by default.
DIFF_ROWS = 200


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

    def answer(status: int, body: str, assets: tuple[str, ...] = ()) -> Response:
        page = layout(
            "Compare", form + help_text + defaults_note(base) + body, values, [url(a) for a in assets]
        )
        return Response(status, page)

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
    sessions = []
    durations = []
    skipped: list[str] = []
    for query, name in ((side_a, a_text), (side_b, b_text)):
        entries, _ = newest(cat, query)
        if not entries:
            return answer(404, error_box(f"no report matches {name!r}"))
        loaded = list(cat.sessions(entries, lambda entry, reason: skipped.append(entry.name)))
        if not loaded:
            return answer(404, error_box(f"none of the reports of {name!r} could be read"))
        profiles.append(compare.profile(loaded))
        sessions.append(loaded)
        durations.append(distribution(entries, name))
    table = compare.html_table(compare.diff(profiles[0], profiles[1]), a_text, b_text, limit)
    note = (
        f'<p class="note">{len(skipped)} report(s) could not be read and are left out.</p>' if skipped else ""
    )
    data = {"sides": durations, "tree": diff_tree(sessions[0], sessions[1]).to_json(per_report=True)}
    return answer(200, note + visuals(data) + table, ASSETS)


ASSETS = (
    "vendor/uplot/uPlot.min.css",
    "vendor/uplot/uPlot.iife.min.js",
    "common.js",
    "flame.js",
    "diff.js",
)


def distribution(entries: list[Entry], name: str) -> dict[str, object]:
    """One side's durations: how many, and the duration at each whole percentile (nearest rank)."""
    ordered = sorted(e.duration for e in entries)
    return {
        "name": name,
        "count": len(ordered),
        "percentiles": [percentile(ordered, max(p, 0.5) / 100) for p in range(101)],
    }


def visuals(data: Mapping[str, object]) -> str:
    return (
        json_block("diff-data", data)
        + '<div class="side-by-side"><div><h2>Durations</h2><div class="chart" id="distribution"></div>'
        "<p class=\"note\">Each side's request durations by percentile: the curve of B above A's is B "
        "slower at that share of requests.</p></div></div>"
        "<h2>Differential flame graph</h2>"
        '<div class="flame-bar"><button type="button" id="flame-reset">reset zoom</button>'
        '<label>widths <select id="flame-side"><option value="1">B (after)</option>'
        '<option value="0">A (before)</option></select></label>'
        '<input id="flame-search" placeholder="highlight: function or file">'
        '<span class="detail" id="flame-detail"></span></div>'
        '<div class="flamegraph" id="flame" data-json="diff-data"></div>'
        '<p class="legend"><span><i class="slower"></i>self time grew (B − A)</span>'
        '<span><i class="faster"></i>self time shrank</span><span><i class="same"></i>about the same</span> '
        "Widths: milliseconds per report on the chosen side; colour: the change in the frame's own "
        "time, per report.</p><h2>Functions</h2>"
    )
