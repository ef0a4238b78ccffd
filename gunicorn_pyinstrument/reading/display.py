"""How the reading tools speak: the program's name that starts their messages, and times as UTC
text. Shared by the command line and the web page."""

from __future__ import annotations

import datetime

PROG = "gunicorn-pyinstrument"


def iso(epoch: float) -> str:
    """A time as ``YYYY-MM-DD HH:MM:SS.mmm``, in UTC."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
