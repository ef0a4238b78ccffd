"""``/workers``: per-worker mode's windows on a timeline, one row per worker, each window a bar
filled up to the share of it the worker was busy (``busy.py``: running code, against waiting for
work in its loop's select/epoll); a click on a window opens its report. Drawn here as SVG: the
page needs no script."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ...catalog import Catalog, Entry, Query
from ...reading.display import iso
from ..busy import Busy, busy_of
from ..form import check_keys, defaults_note, filter_form, parse_selection, selection_values
from ..layout import error_box, esc, layout, report_link, unreadable_note
from ..request import parse_number
from ..response import Response
from ..timeline import bucket_seconds

#: Windows drawn by default and at most (each one's session is read to tell busy from idle).
DEFAULT_WINDOWS = 300
MAX_WINDOWS = 3000

WIDTH, LEFT, ROW, GAP, TOP = 1000, 170, 26, 8, 22


def workers_page(cat: Catalog, params: Mapping[str, str], base: Query) -> Response:
    values = selection_values(params)
    parts = [filter_form("/workers", values, {"limit": params.get("limit", "")}), defaults_note(base)]
    try:
        check_keys(params, ("limit",))
        query = dataclasses.replace(parse_selection(values, base), kind="worker")
        limit = parse_number(params, "limit", DEFAULT_WINDOWS, 1, MAX_WINDOWS)
    except ValueError as exc:
        return Response(400, layout("Workers", error_box(str(exc)) + "".join(parts), values))
    parts.append(unreadable_note(cat))
    entries = cat.entries(query, order="time", descending=True, limit=limit + 1)
    more = len(entries) > limit
    entries = sorted(entries[:limit], key=lambda e: e.start)
    if not entries:
        parts.append(
            '<p id="empty">No per-worker window matches the selection (per-worker mode: '
            "<code>GUNICORN_PYINSTRUMENT_MODE=worker</code>).</p>"
        )
        return Response(200, layout("Workers", "".join(parts), values))
    measured: list[tuple[Entry, Busy | None]] = []
    for entry in entries:
        try:
            measured.append((entry, busy_of(cat.load_session(entry), entry.duration)))
        except Exception:
            measured.append((entry, None))
    note = f"{len(entries)} window(s)" + (f", the newest {limit}" if more else "") + ". "
    parts.append(
        f'<p class="note" id="summary">{esc(note)}Each bar is a window: filled up to the share of it '
        "the worker was busy running code; the rest it waited for work (select/epoll). Click a window "
        "to open it.</p>"
    )
    parts.append(timeline_svg(measured))
    parts.append(window_table(measured))
    return Response(200, layout("Workers", "".join(parts), values))


def timeline_svg(measured: list[tuple[Entry, Busy | None]]) -> str:
    workers: dict[str, int] = {}
    for entry, _ in measured:
        workers.setdefault(_row_name(entry), len(workers))
    t0 = min(e.start for e, _ in measured)
    t1 = max(e.end for e, _ in measured)
    span = max(t1 - t0, 1e-3)
    scale = (WIDTH - LEFT - 10) / span
    height = TOP + len(workers) * (ROW + GAP)
    out = [
        f'<svg class="workers" id="workers" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" '
        f'height="{height}" role="img" aria-label="windows per worker, busy against idle">'
    ]
    step = bucket_seconds(span, 8)
    tick = (t0 // step + 1) * step
    while tick < t1:
        x = LEFT + (tick - t0) * scale
        out.append(
            f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{height}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{TOP - 8}" text-anchor="middle">{esc(iso(tick)[11:19])}</text>'
        )
        tick += step
    for name, row in workers.items():
        y = TOP + row * (ROW + GAP)
        out.append(f'<text x="4" y="{y + ROW / 2 + 4:.1f}">{esc(name)}</text>')
    for entry, busy in measured:
        y = TOP + workers[_row_name(entry)] * (ROW + GAP)
        x = LEFT + (entry.start - t0) * scale
        w = max(entry.duration * scale - 1, 1.0)
        share = busy.share if busy else 0.0
        filled = ROW * share
        title = f"{_row_name(entry)}, {iso(entry.start)}: " + (
            f"busy {busy.busy * 1000:.0f} ms, idle {busy.idle * 1000:.0f} ms "
            f"of {busy.duration * 1000:.0f} ms ({share * 100:.0f}% busy)"
            if busy
            else "its session could not be read"
        )
        out.append(
            f'<a class="window" href="{esc(report_link(entry.name))}" data-name="{esc(entry.name)}" '
            f'data-busy="{share:.4f}"><title>{esc(title)}</title>'
            f'<rect class="idle" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{ROW}"/>'
            f'<rect class="busy" x="{x:.1f}" y="{y + ROW - filled:.1f}" width="{w:.1f}" '
            f'height="{filled:.1f}"/>'
            "</a>"
        )
    out.append("</svg>")
    return "".join(out)


def window_table(measured: list[tuple[Entry, Busy | None]]) -> str:
    rows = []
    for entry, busy in reversed(measured):
        cells = (
            f"<td>{busy.busy * 1000:.0f}</td><td>{busy.idle * 1000:.0f}</td><td>{busy.share * 100:.1f}</td>"
            if busy
            else '<td colspan="3">unreadable</td>'
        )
        rows.append(
            f'<tr data-name="{esc(entry.name)}"><td>{esc(iso(entry.start))}</td>'
            f'<td class="name">{esc(_row_name(entry))}</td><td>{entry.duration * 1000:.0f}</td>{cells}'
            f'<td><a href="{esc(report_link(entry.name))}">report</a></td></tr>'
        )
    return (
        '<table id="windows" class="list"><thead><tr><th>start (UTC)</th><th>worker</th><th>ms</th>'
        "<th>busy ms</th><th>idle ms</th><th>busy %</th><th></th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _row_name(entry: Entry) -> str:
    """The worker, as the row's label: host (its last 12 characters at most) and PID-INSTANCE."""
    return f"{entry.hostname[-12:]}/{entry.worker}" if entry.hostname else entry.worker
