"""What users type, parsed: one parser for each kind of value (a number, a count, a duration, a
size, a time, a regular expression, an ``s3://`` URL), shared by the settings, the command line
and the web page.

Each parser takes the text as typed and raises ValueError with a short message; the caller says
where the text came from (the variable, the option, the form's field).
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

# A number and its unit, as in 250ms, 1.5h or 500MB.
_QUANTITY = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*")
#: Units of a duration, in seconds; a bare number is seconds.
_DURATION_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
#: Units of an age (how long ago), in seconds; the unit is required, so a bare number is no age.
_AGE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: Units of a size, in bytes, in any case: powers of 1000 and of 1024.
_SIZE_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2}
_SIZE_UNITS |= {"mib": 1024**2, "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "t": 1000**4, "tb": 1000**4}
_SIZE_UNITS |= {"tib": 1024**4}
S3_SCHEME = "s3://"
# AWS's rules for bucket names (S3-compatible stores accept the same or more).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _quantity(text: str, units: Mapping[str, float], fold_case: bool = False) -> float | None:
    """The number times its unit, or None if the text is not a number with one of ``units``."""
    match = _QUANTITY.fullmatch(text)
    if not match:
        return None
    factor = units.get(match.group(2).lower() if fold_case else match.group(2))
    return None if factor is None else float(match.group(1)) * factor


def parse_number(text: str) -> float:
    """A finite number, as Python writes it: ``0.25``, ``1e-3``."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError("not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("not a finite number")
    return value


def parse_count(text: str, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number from ``minimum`` (to ``maximum``)."""
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError("not a whole number") from None
    if maximum is not None and not minimum <= value <= maximum:
        raise ValueError("out of range")
    if value < minimum:
        raise ValueError("negative" if minimum == 0 else f"less than {minimum}")
    return value


def parse_seconds(text: str) -> float:
    """``0.25``, ``250ms``, ``1.5s``, ``2m``: seconds."""
    value = _quantity(text, _DURATION_UNITS)
    if value is None:
        raise ValueError(f"not a duration: {text!r} (for example 0.25, 250ms, 2s)")
    return value


def parse_span(text: str) -> float:
    """A length of time that is more than nothing: ``30s``, ``10m``, ``1.5h``, ``500ms``; a bare
    number is seconds."""
    value = _quantity(text, _DURATION_UNITS)
    if value is None:
        raise ValueError(f"bad duration {text.strip()!r}")
    if value == float("inf"):
        raise ValueError(f"duration {text.strip()!r} is too long")
    if value <= 0:
        raise ValueError(f"duration {text.strip()!r} is not positive")
    return value


def parse_size(text: str) -> int:
    """``500MB``, ``2GiB``, ``100000``: a number of bytes with an optional unit."""
    number = _quantity(text, _SIZE_UNITS, fold_case=True)
    if number is None:
        raise ValueError("not a size")
    if number == float("inf"):
        raise ValueError("too large")
    value = int(number)
    if value < 1:
        raise ValueError("less than 1 byte")
    return value


def parse_time(text: str, now: float | None = None) -> float:
    """An ISO 8601 time (UTC unless it says otherwise) or an age: ``10m``, ``2h``, ``3d`` ago."""
    age = _quantity(text, _AGE_UNITS)
    if age is not None:
        return (time.time() if now is None else now) - age
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (an ISO time like 2026-11-26T10:00, or an age like 10m, 2h, 1d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def parse_regex(text: str, quote: bool = True) -> re.Pattern[str]:
    """A Python regular expression, compiled. The message names the text, or with ``quote=False``
    (where the caller shows the text already) gives the reason alone, in parentheses."""
    try:
        return re.compile(text)
    except re.error as exc:
        reason = str(exc)
    except (OverflowError, RecursionError) as exc:  # a{4294967296}, or thousands of nested groups
        reason = f"{type(exc).__name__}: {exc}"
    if quote:
        raise ValueError(f"bad regular expression {text!r}: {reason}")
    raise ValueError(f"bad regular expression ({reason})")


@dataclass(frozen=True)
class S3Location:
    """``s3://bucket/prefix``: the prefix has no leading or trailing slash and may be empty."""

    bucket: str
    prefix: str = ""

    def __str__(self) -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.prefix}" if self.prefix else f"{S3_SCHEME}{self.bucket}"

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)


def is_s3_url(text: str | None) -> bool:
    return bool(text) and str(text).startswith(S3_SCHEME)


def parse_s3_url(text: str) -> S3Location:
    """``s3://bucket`` or ``s3://bucket/some/prefix``; ValueError with a short reason."""
    if not text.startswith(S3_SCHEME):
        raise ValueError("not an s3:// URL")
    bucket, _, prefix = text[len(S3_SCHEME) :].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ValueError("bad bucket name (3 to 63 lower-case letters, digits, dots and hyphens)")
    prefix = prefix.strip("/")
    if prefix:
        parts = prefix.split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ValueError("empty, '.' or '..' segment in the prefix")
        if not prefix.isprintable() or "\\" in prefix or len(prefix.encode("utf-8", "replace")) > 512:
            raise ValueError("bad prefix")
    return S3Location(bucket, prefix)
