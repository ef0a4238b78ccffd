"""Reading a request: its target split into path segments and query parameters, with limits on
both, and the numbers among the parameters."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from ..inputs import parse_count
from .response import HTTPError

#: Longer request targets are refused before anything else is done with them.
MAX_TARGET = 8192
#: At most this many query parameters (the longest form has a dozen).
MAX_FIELDS = 64


def split_target(target: str) -> tuple[list[str], str]:
    """The decoded path segments and the raw query string of a request target.

    The path is split on ``/`` before decoding, so ``%2F`` stays inside its segment (and a name
    holding it is refused later, as any name the catalog does not list)."""
    if len(target) > MAX_TARGET:
        raise HTTPError(400, f"request target longer than {MAX_TARGET} characters")
    raw_path, _, query = target.partition("?")
    query = query.partition("#")[0]
    if not raw_path.startswith("/"):
        raise HTTPError(404, "not found")
    try:
        parts = [urllib.parse.unquote(p, errors="strict") for p in raw_path[1:].split("/")]
    except UnicodeDecodeError:
        raise HTTPError(400, "bad percent-encoding in the path (not UTF-8)") from None
    return parts, query


def parse_params(query: str) -> dict[str, str]:
    """Query parameters, the last value of a repeated one winning."""
    try:
        pairs = urllib.parse.parse_qsl(
            query, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS
        )
    except UnicodeDecodeError:
        raise HTTPError(400, "bad percent-encoding in the query (not UTF-8)") from None
    except ValueError:
        raise HTTPError(400, f"more than {MAX_FIELDS} query parameters") from None
    return dict(pairs)


def parse_number(params: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    text = params.get(key, "").strip()
    if not text:
        return default
    try:
        return parse_count(text, low, high)
    except ValueError:
        raise ValueError(f"{key} must be a whole number from {low} to {high}, not {text!r}") from None
