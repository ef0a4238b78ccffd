"""Endpoints: the requests that differ only by the ids in their path are one endpoint,
``GET /users/{n}``, for ``top`` and the ``endpoint`` key of a query."""

from __future__ import annotations

import re

_FOLDS = (
    (re.compile(r"\d+"), "{n}"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "{uuid}"),
    (re.compile(r"(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{16,}"), "{hex}"),
)


def fold_path(path: str) -> str:
    """``/users/42/orders/7`` → ``/users/{n}/orders/{n}``: one endpoint, whatever the ids
    (numbers, UUIDs and long hexadecimal ids are folded)."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        for pattern, placeholder in _FOLDS:
            if pattern.fullmatch(part):
                parts[i] = placeholder
                break
    return "/".join(parts)


def request_endpoint(method: str | None, path: str | None) -> str:
    """A request's endpoint, as :func:`~.stats.top` groups them: ``GET /users/{n}``."""
    return f"{method} {fold_path(path or '')}"
