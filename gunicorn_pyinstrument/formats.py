"""Turn a pyinstrument Session into the bytes of one format, with pyinstrument's own renderers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyinstrument.session import Session


def render(session: Session, fmt: str) -> bytes:
    if fmt == "session":
        return json.dumps(session.to_json(), separators=(",", ":")).encode("utf-8")
    if fmt == "html":
        from pyinstrument.renderers import HTMLRenderer

        return str(HTMLRenderer().render(session)).encode("utf-8")
    if fmt == "speedscope":
        from pyinstrument.renderers import SpeedscopeRenderer

        return str(SpeedscopeRenderer().render(session)).encode("utf-8")
    if fmt == "text":
        from pyinstrument.renderers import ConsoleRenderer

        return str(ConsoleRenderer(unicode=True, color=False).render(session)).encode("utf-8")
    if fmt == "pstats":
        from pyinstrument.renderers import PstatsRenderer

        # pstats output is a marshal blob carried in a str; surrogateescape gives the bytes back.
        return str(PstatsRenderer().render(session)).encode("utf-8", "surrogateescape")
    raise ValueError(f"unknown format {fmt!r}")


def load_session(data: bytes) -> Session:
    from pyinstrument.session import Session

    session: Session = Session.from_json(json.loads(data))
    return session
