"""``/diff?a=label=v1&b=label=v2``: two selections compared function by function, which got
slower and which got faster (``reading/compare.py``)."""

from __future__ import annotations

from collections.abc import Mapping

from ...catalog import Catalog, Query
from ...reading import compare
from ..form import check_keys, defaults_note, filter_form, parse_selection, selection_values
from ..layout import error_box, esc, layout
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
