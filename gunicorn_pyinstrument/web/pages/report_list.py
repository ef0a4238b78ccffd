"""``/``: the reports, filtered by the form, sorted by a click on a column, a page at a time; and
how many reports the selected workers dropped over the selected time, in all and per worker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ...catalog import ORDERS, Catalog, Drops, Entry, Query
from ...directory import FORMAT_SUFFIXES
from ...reading.display import iso
from ..form import check_keys, defaults_note, filter_form, parse_selection, selection_values
from ..layout import error_box, esc, file_link, flame_link, link, report_link, unreadable_note
from ..request import parse_number
from ..response import CONTENT_TYPES, Response, page

#: Rows per page of the report list, by default and at most.
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000

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
    ("rate", "Hz", "rate"),
    ("sampler", "sampler %", "sampler"),
    ("dropped", "dropped", None),
    ("files", "files", None),
    ("name", "name", "name"),
)
NUMERIC_COLUMNS = {"status", "duration", "samples", "rate", "sampler", "dropped"}
#: Sort keys whose first click shows the largest (or newest) first.
DESCENDING_FIRST = {"time", "duration", "status", "samples", "rate", "sampler"}


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
    parts.append(drops_summary(cat.dropped(query)))
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
        if "session" in e.files:
            files += f' <a class="file flame" href="{esc(flame_link(e.name))}">flame</a>'
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
            f'<td class="num rate">{"" if e.rate is None else f"{e.rate:.0f}"}</td>'
            f"{_sampler_cell(e)}"
            f"{_dropped_cell(e)}"
            f'<td class="files">{files}</td>'
            f'<td class="name">{esc(e.name)}</td></tr>'
        )
    return (
        f'<table id="reports" class="list"><thead><tr>{"".join(heads)}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _sampler_cell(e: Entry) -> str:
    """The sampler's share of the worker's CPU over the report, marked when a window went over the
    budget; empty for pyinstrument's engine and for records that do not have it."""
    if e.sampler_share is None:
        return '<td class="num sampler"></td>'
    text = f"{e.sampler_share * 100:.2f}"
    if e.over_budget:
        return (
            f'<td class="num sampler over-budget" title="over the budget (MAX_OVERHEAD)">'
            f"{text} ⚠ over budget</td>"
        )
    title = f"{e.sampler_cpu * 1000:.1f} ms of the sampler's CPU" if e.sampler_cpu is not None else ""
    return f'<td class="num sampler" title="{esc(title)}">{text}</td>'


def _dropped_cell(e: Entry) -> str:
    """The reports its worker dropped since its previous report; empty when none (or not recorded)."""
    queue_full, spool_full = e.dropped_queue_full or 0, e.dropped_spool_full or 0
    if not queue_full and not spool_full:
        return '<td class="num dropped"></td>'
    title = f"{queue_full} with the writer's queue full, {spool_full} with the upload spool full"
    return f'<td class="num dropped" title="{esc(title)}">{queue_full + spool_full}</td>'


def drops_summary(drops: Drops) -> str:
    """The reports the selected workers dropped over the selected time (what a request was does not
    select them: it is not recorded), and, when there are any, per worker."""
    if not drops:
        text = "No report dropped by the selected workers over the selected time."
        return f'<p class="note" id="dropped">{text}</p>'
    rows = "".join(
        f'<tr data-worker="{esc(w.worker)}"><td class="worker">{esc(w.worker)}</td>'
        f'<td class="host">{esc(w.hostname)}</td><td class="num">{w.queue_full}</td>'
        f'<td class="num">{w.spool_full}</td></tr>'
        for w in drops.workers
    )
    return (
        f'<p class="note" id="dropped">Dropped, never written: {esc(drops.summary())} '
        "(the writer's queue full: raise QUEUE_SIZE or lower SAMPLE_RATE; the upload spool full: "
        "the store is out of reach).</p>"
        '<details id="dropped-workers"><summary>dropped per worker</summary>'
        '<table class="list"><thead><tr><th>worker</th><th>host</th><th class="num">queue full</th>'
        f'<th class="num">spool full</th></tr></thead><tbody>{rows}</tbody></table></details>'
    )


def _format_rank(fmt: str) -> int:
    order = list(FORMAT_SUFFIXES)
    return order.index(fmt) if fmt in order else len(order)
