"""Choosing requests: should this request be profiled? Decided before any profiler starts.

Pure logic: no gunicorn, no pyinstrument. The cheapest checks run first so that a request
that is not chosen costs a regex search and a random number at most.
"""

from __future__ import annotations

import hmac
import random
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote

from ..settings import TOKEN_HEADER, Settings
from .switch import Gate

#: Why a request was profiled; stored in its metadata.
TRIGGER_TOKEN = "token"
TRIGGER_SAMPLE = "sample"

TOKEN_HEADER_UPPER = TOKEN_HEADER.upper()


def decoded_path(raw_path: str) -> str:
    """The percent-decoded URL path, never raising on bad bytes."""
    return unquote(raw_path, errors="replace")


def header_value(headers: Iterable[tuple[str, str]], name_upper: str) -> str | None:
    """A header's value; gunicorn hands names over in upper case. A header sent more than once gives
    its values joined by commas (RFC 9110, 5.3), as in a WSGI environ: every front-end sees the same
    value, and a repeated token header never matches."""
    values = [value for name, value in headers if name.upper() == name_upper]
    return ",".join(values) if values else None


@dataclass(frozen=True)
class Selector:
    rate: float
    include: re.Pattern[str] | None = None
    exclude: re.Pattern[str] | None = None
    token: bytes | None = None
    random: Callable[[], float] = field(default=random.random, compare=False)
    gate: Gate = field(default_factory=Gate, compare=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Selector:
        token = settings.token.encode("ascii") if settings.token else None
        gate = Gate(settings.schedule, settings.control_file)
        return cls(settings.sample_rate, settings.include, settings.exclude, token, gate=gate)

    def token_matches(self, offered: str | None) -> bool:
        if self.token is None or offered is None:
            return False
        # compare_digest's time depends only on the length of the secret, not on where they differ.
        return hmac.compare_digest(offered.encode("utf-8", "replace"), self.token)

    def decide(self, path: str, offered_token: str | None = None) -> str | None:
        """A trigger (TRIGGER_TOKEN or TRIGGER_SAMPLE) when the request is to be profiled, else None.

        ``offered_token`` is the request's token header, looked up by the caller only when a token
        is configured (header lists are built lazily on some workers).
        The control file switches everything off, the token included; the schedule does not
        apply to the token."""
        if not self.gate.switched_on():
            return None
        if self.token is not None and self.token_matches(offered_token):
            return TRIGGER_TOKEN
        if self.rate <= 0 or not self.gate.in_window():
            return None
        if self.include is not None and not self.include.search(path):
            return None
        if self.exclude is not None and self.exclude.search(path):
            return None
        if self.rate >= 1 or self.random() < self.rate:
            return TRIGGER_SAMPLE
        return None
