"""``/chart``: latency over time, one point per request report (its start against its duration),
coloured by status class or by label, with the 50th and 95th percentiles of each slice of time
on top; a click on a point opens its report. Filtered by the same form as the list; its data at
``/data/points`` (``timeline.py``), drawn by ``static/chart.js`` with uPlot."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ...catalog import Catalog, Query
from ..assets import url
from ..form import check_keys, defaults_note, filter_form, parse_selection, selection_values
from ..layout import error_box, esc, layout, link, unreadable_note
from ..response import HTTPError, Response, json_response
from ..timeline import chart_data

#: The newest this many reports are drawn (the chart stays quick; the note says when there are more).
MAX_POINTS = 20_000
ASSETS = ("vendor/uplot/uPlot.min.css", "vendor/uplot/uPlot.iife.min.js", "common.js", "chart.js")


def _query(params: Mapping[str, str], base: Query) -> Query:
    check_keys(params, ())
    return dataclasses.replace(parse_selection(selection_values(params), base), kind="request")


def chart_page(cat: Catalog, params: Mapping[str, str], base: Query) -> Response:
    values = selection_values(params)
    parts = [filter_form("/chart", values, {}), defaults_note(base)]
    try:
        _query(params, base)
    except ValueError as exc:
        return Response(400, layout("Latency over time", error_box(str(exc)) + "".join(parts), values))
    parts.append(unreadable_note(cat))
    parts.append(
        '<div class="chart-controls">colour by '
        '<label><input type="radio" name="colour" value="status" checked> status</label>'
        '<label><input type="radio" name="colour" value="label"> label</label>'
        '<label><input type="checkbox" id="chart-log"> log scale</label>'
        '<span class="note" id="chart-summary"></span></div>'
        f'<div class="chart" id="chart" data-src="{esc(link("/data/points", values))}">'
        '<div class="tip" id="chart-tip"></div></div>'
        '<p class="note">One point per request report: when it started, how long it took. Lines: the '
        "50th and 95th percentiles of each slice of time. Hover a point for its request, click it to "
        "open its report; drag to zoom in, double-click to zoom out.</p>"
    )
    return Response(200, layout("Latency over time", "".join(parts), values, [url(a) for a in ASSETS]))


def points_data(cat: Catalog, params: Mapping[str, str], base: Query) -> Response:
    try:
        query = _query(params, base)
    except ValueError as exc:
        raise HTTPError(400, str(exc)) from None
    entries = cat.entries(query, order="time", descending=True, limit=MAX_POINTS + 1)
    return json_response(chart_data(entries[:MAX_POINTS], len(entries) > MAX_POINTS))
