"""What a page answers: a :class:`Response` (an HTML page, pyinstrument's viewer or a file), or an
:class:`HTTPError` that becomes the site's error page."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import BinaryIO

from .layout import error_box, json_bytes, layout
from .security import FILE_CSP, PAGE_CSP, viewer_csp

HTML_TYPE = "text/html; charset=utf-8"
#: The report files the site serves, by format.
CONTENT_TYPES = {
    "session": "application/json",
    "speedscope": "application/json",
    "html": HTML_TYPE,
    "text": "text/plain; charset=utf-8",
    "pstats": "application/octet-stream",
}


class HTTPError(Exception):
    """An answer other than 200, with a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = HTML_TYPE
    csp: str = PAGE_CSP
    headers: dict[str, str] = field(default_factory=dict)
    file: BinaryIO | None = None  # sent instead of body, ``length`` bytes
    length: int = 0


def page(status: int, title: str, body: str, selection: Mapping[str, str]) -> Response:
    return Response(status, layout(title, body, selection))


def json_response(data: object) -> Response:
    """Data for a page's script (``/data/...``)."""
    return Response(200, json_bytes(data), content_type="application/json", csp=FILE_CSP)


def error_response(status: int, message: str) -> Response:
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    return page(status, title, error_box(message) + '<p><a href="/">All reports</a></p>', {})


def viewer_response(document: bytes) -> Response:
    return Response(200, document, csp=viewer_csp(document))


def content_disposition(filename: str) -> str:
    fallback = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"
