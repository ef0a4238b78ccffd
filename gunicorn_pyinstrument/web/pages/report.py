"""One report: ``/report/NAME``, pyinstrument's viewer of it, and ``/file/NAME/FORMAT``, one of
its files as a download.

Only what the catalog lists is ever read: the name from the request is checked and looked up in
the catalog, and the file names come from the report's metadata record, never from the request."""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, BinaryIO

from ...catalog import Catalog, Entry
from ...stores.local import check_name
from ..response import CONTENT_TYPES, HTTPError, Response, content_disposition, viewer_response
from ..security import FILE_CSP

if TYPE_CHECKING:
    from pyinstrument.session import Session


def lookup(cat: Catalog, name: str) -> Entry:
    """The catalog's entry of a report name from a request; 404 for anything else."""
    shown = name if len(name) <= 120 else name[:120] + "…"
    try:
        check_name(name)
    except ValueError:
        raise HTTPError(404, f"no report named {shown!r}") from None
    entry = cat.get(name)
    if entry is None:
        raise HTTPError(404, f"no report named {shown!r}")
    return entry


def open_report_file(cat: Catalog, entry: Entry, fmt: str) -> tuple[BinaryIO, int] | None:
    """One of the report's files, open, and its size; None if it has no such file (any more).
    The name comes from the catalog; the file must be a regular file, not a link to one."""
    try:
        path = cat.file_path(entry, fmt)
    except ValueError:
        return None
    if path is None:
        return None
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK  # NONBLOCK: no wait on a FIFO
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            return None
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def report_page(cat: Catalog, name: str) -> Response:
    entry = lookup(cat, name)
    opened = open_report_file(cat, entry, "html")
    if opened is not None:
        with opened[0] as f:
            return viewer_response(f.read())
    if "session" not in entry.files:
        raise HTTPError(404, f"report {name!r} has no HTML file and no session to render one from")
    from ...formats import render

    return viewer_response(render(load_session(cat, entry), "html"))


def load_session(cat: Catalog, entry: Entry) -> Session:
    """A report's session, for a page; 404 when its file is gone, 500 when it cannot be read."""
    try:
        return cat.load_session(entry)
    except FileNotFoundError:
        raise HTTPError(404, f"the files of report {entry.name!r} are gone") from None
    except Exception as exc:
        raise HTTPError(500, f"cannot read the session of {entry.name!r}: {exc}") from None


def file_response(cat: Catalog, name: str, fmt: str) -> Response:
    entry = lookup(cat, name)
    if fmt not in entry.files or fmt not in CONTENT_TYPES:
        raise HTTPError(404, f"report {name!r} has no {fmt!r} file")
    opened = open_report_file(cat, entry, fmt)
    if opened is None:
        raise HTTPError(404, f"the {fmt!r} file of report {name!r} is gone")
    f, size = opened
    filename = entry.files[fmt]
    headers = {"Content-Disposition": content_disposition(filename)}
    return Response(200, content_type=CONTENT_TYPES[fmt], csp=FILE_CSP, headers=headers, file=f, length=size)
