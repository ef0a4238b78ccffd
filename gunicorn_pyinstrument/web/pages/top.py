"""``/top``: time per endpoint (method and path, ids folded), each linking to its reports merged
into one profile (``/merge``) and to their list."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ...catalog import TOP_ORDERS, Catalog, Query, top
from ..form import check_keys, defaults_note, filter_form, parse_selection, selection_values
from ..layout import error_box, esc, link, unreadable_note
from ..response import Response, page


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
        "seconds; with the sampler engine, its median share of the worker's CPU. An endpoint opens "
        "its reports merged into one profile; <i>latency</i> shows them over time, <i>flame graph</i> "
        "merged as a flame graph.</p>"
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
    heads.append("<th title=\"the sampler's median share of the worker's CPU\">sampler %</th>")
    heads.append("<th></th>")
    rows = []
    others = {k: v for k, v in values.items() if k != "endpoint"}
    for s in stats:
        merge = link("/merge", {"endpoint": s.endpoint, **others})
        listing = link("/", {"endpoint": s.endpoint, **others})
        chart = link("/chart", {"endpoint": s.endpoint, **others})
        flame = link("/flame", {"endpoint": s.endpoint, **others})
        rows.append(
            f'<tr data-endpoint="{esc(s.endpoint)}"><td class="name">'
            f'<a class="merge" href="{esc(merge)}">{esc(s.endpoint)}</a></td>'
            f"<td>{s.count}</td><td>{s.p50 * 1000:.1f}</td><td>{s.p95 * 1000:.1f}</td>"
            f"<td>{s.max * 1000:.1f}</td><td>{s.total:.3f}</td>"
            f'<td class="sampler">{"" if s.sampler_share is None else f"{s.sampler_share * 100:.2f}"}</td>'
            f'<td><a class="reports" href="{esc(listing)}">reports</a> '
            f'<a class="chart" href="{esc(chart)}">latency</a> '
            f'<a class="flame" href="{esc(flame)}">flame graph</a></td></tr>'
        )
    parts.append(
        f'<table id="top"><thead><tr>{"".join(heads)}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )
    return page(200, "Endpoints", "".join(parts), values)
