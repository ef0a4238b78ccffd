"""``/merge``: the reports of a selection (an endpoint, from ``/top``) merged into one profile,
shown in pyinstrument's viewer."""

from __future__ import annotations

from collections.abc import Mapping

from ...catalog import Catalog, Entry, Query
from ..form import check_keys, describe, parse_selection, selection_values
from ..response import HTTPError, Response, viewer_response
from ..security import script_safe

#: A merge, or one side of a diff, takes at most this many reports (the newest): loading sessions
#: is the slow part, and a page should answer in seconds.
MERGE_LIMIT = 1000


def newest(cat: Catalog, query: Query) -> tuple[list[Entry], bool]:
    """The newest MERGE_LIMIT matching reports, and whether there were more."""
    entries = cat.entries(query, order="time", descending=True, limit=MERGE_LIMIT + 1)
    return entries[:MERGE_LIMIT], len(entries) > MERGE_LIMIT


def merge_page(cat: Catalog, params: Mapping[str, str], base: Query) -> Response:
    from ...aggregate import merge_sessions
    from ...formats import render

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
