"""The filter form the pages share: one field per selection key of the catalog, and reading back
what it sends (the selection, checked field by field, over the command line's defaults)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ..catalog import QUERY_KEYS, Query
from ..catalog.query import KINDS as QUERY_KINDS
from ..reading.display import iso
from .layout import esc

#: Labels and hints of the filter form's fields, by selection key.
FIELDS: dict[str, tuple[str, str]] = {
    "path": ("path", "regex: ^/api/"),
    "method": ("method", "GET"),
    "status": ("status", "200 or 5xx"),
    "min_duration": ("min duration", "250ms"),
    "label": ("label", "v1"),
    "since": ("since", "10m, 2h or ISO time"),
    "until": ("until", "ISO time or age"),
    "worker": ("worker", "pid or PID-INSTANCE"),
    "kind": ("kind", ""),
    "endpoint": ("endpoint", "GET /users/{n}"),
}
KINDS = ("", *QUERY_KINDS)  # "": any kind of report (dropped-report records only when asked for)


def check_keys(params: Mapping[str, str], extra: Iterable[str]) -> None:
    allowed = set(QUERY_KEYS) | set(extra)
    for key in params:
        if key not in allowed:
            raise ValueError(f"unknown parameter {key!r}: expected one of {', '.join(sorted(allowed))}")


def selection_values(params: Mapping[str, str]) -> dict[str, str]:
    """The selection as typed (the form's values), empty ones left out."""
    return {k: params[k] for k in QUERY_KEYS if params.get(k, "").strip()}


def parse_selection(values: Mapping[str, str], base: Query) -> Query:
    """``Query.parse``, with the field that is wrong named in the message."""
    for key, text in values.items():
        if key in QUERY_KEYS:
            try:
                QUERY_KEYS[key](text.strip())
            except ValueError as exc:
                raise ValueError(f"{FIELDS.get(key, (key,))[0]}: {exc}") from None
    return Query.parse(dict(values), base)


def describe(query: Query) -> list[str]:
    """A query's fields as ``key=value`` text (the form's syntax)."""
    words = []
    for key, value in query.fields().items():
        if isinstance(value, re.Pattern):
            text = value.pattern
        elif key in ("since", "until"):
            text = iso(value).replace(" ", "T") + "Z"
        elif key == "min_duration":
            text = f"{value:g}s"
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        words.append(f"{key}={text}")
    return words


def filter_form(action: str, values: Mapping[str, str], hidden: Mapping[str, str], before: str = "") -> str:
    """The selection form: one field per selection key; ``hidden`` keeps the page's other
    controls (sorting) across a new filter; ``before`` adds fields of the page's own."""
    fields = [before]
    for key in QUERY_KEYS:
        text, hint = FIELDS.get(key, (key.replace("_", " "), ""))
        value = values.get(key, "")
        if key == "kind":
            options = "".join(
                f'<option value="{k}"{" selected" if k == value else ""}>{k or "any"}</option>' for k in KINDS
            )
            control = f'<select id="f-{key}" name="{key}">{options}</select>'
        else:
            wide = ' class="wide"' if key in ("path", "endpoint") else ""
            control = (
                f'<input id="f-{key}" name="{key}" value="{esc(value)}" placeholder="{esc(hint)}"{wide}>'
            )
        fields.append(f"<label>{esc(text)}{control}</label>")
    fields += [f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in hidden.items() if v]
    fields.append('<button type="submit" id="apply">Apply</button>')
    fields.append(f'<a href="{esc(action)}" id="clear">clear</a>')
    return f'<form class="filters" id="filters" method="get" action="{esc(action)}">{"".join(fields)}</form>'


def defaults_note(base: Query) -> str:
    words = describe(base)
    if not words:
        return ""
    return (
        '<p class="note" id="defaults">Selection from the command line: '
        + ", ".join(f"<code>{esc(w)}</code>" for w in words)
        + " (a value in the form replaces it).</p>"
    )
