"""S3-compatible object storage, where the reports of a whole fleet go.

Only the standard library is imported here; boto3 (``pip install 'gunicorn-pyinstrument[s3]'``) is
imported when an :class:`S3Store` is created, which happens only in the master's helper process
and in the command line, never in the master or a worker.

Object keys are ``<prefix>/<YYYY-MM-DD>/<host>/<file name>``: the day (UTC) the report started,
the host that wrote it, and the report's own file name, which already holds the start time to the
microsecond, the worker's pid and a random instance id drawn when the worker started. So many
containers never write the same key, and a reader that wants only recent reports lists only the
days it needs.
"""

from __future__ import annotations

import datetime
import importlib.util
import re
from collections.abc import Iterator
from typing import Any

from ..directory import REPORT_NAME
from ..inputs import S3Location

INSTALL_HINT = "pip install 'gunicorn-pyinstrument[s3]'"
#: Content types for the objects a browser may open straight from the bucket.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
UNDATED = "undated"

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class StoreError(OSError):
    """The store cannot be reached, or refused a request; the message is one line."""


class MissingObject(StoreError, FileNotFoundError):
    """The store has no such object (removed by a lifecycle rule, or never uploaded)."""


def boto3_available() -> bool:
    """Whether boto3 can be imported, without importing it (the master stays lean)."""
    try:
        return importlib.util.find_spec("boto3") is not None
    except (ImportError, ValueError):
        return False


# --- the key layout, shared by the uploader and the readers ---


def report_day(name: str, start: Any = None) -> str:
    """``YYYY-MM-DD`` (UTC) a report started: from its name, else from its ``start`` time."""
    match = REPORT_NAME.match(name)
    if match:
        return "-".join(match.groups())
    try:
        moment = datetime.datetime.fromtimestamp(float(start), datetime.timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        return UNDATED
    return moment.strftime("%Y-%m-%d")


def host_part(hostname: Any) -> str:
    """A host name as one safe key segment."""
    safe = _UNSAFE.sub("_", str(hostname or "")).strip("._-")[:128]
    return safe or "unknown-host"


def object_key(location: S3Location, record: dict[str, Any], filename: str) -> str:
    """Where one file of the report described by ``record`` (its metadata) is stored."""
    day = report_day(str(record.get("name") or filename), record.get("start"))
    return location.key(day, host_part(record.get("hostname")), filename)


#: A time range over more days than this is read with one listing of the whole prefix instead.
MAX_LISTED_DAYS = 31


def day_prefixes(location: S3Location, since: float, until: float) -> list[str] | None:
    """The key prefixes of every day from ``since`` to ``until`` (epoch seconds), one day of margin
    on each side for clocks that disagree; None when that is more than MAX_LISTED_DAYS days."""
    try:
        first = datetime.datetime.fromtimestamp(since, datetime.timezone.utc).date() - datetime.timedelta(1)
        last = datetime.datetime.fromtimestamp(until, datetime.timezone.utc).date() + datetime.timedelta(1)
    except (ValueError, OverflowError, OSError):
        return None
    if (last - first).days + 1 > MAX_LISTED_DAYS:
        return None
    days = []
    while first <= last:
        days.append(location.key(first.isoformat()) + "/")
        first += datetime.timedelta(1)
    return days


# --- the store ---


def _reason(exc: BaseException) -> str:
    """One line saying what went wrong, without a traceback."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error") or {}
        code, message = error.get("Code"), error.get("Message")
        if code:
            return f"{code}: {message}" if message else str(code)
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def _missing(exc: BaseException) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    error = response.get("Error") or {}
    return str(error.get("Code")) in ("NoSuchKey", "404", "NotFound")


class S3Store:
    """Put, get and list objects in one bucket. Every failure is a :class:`StoreError`.

    Configured by the standard AWS environment (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
    ``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``, instance and
    container roles, ...); ``endpoint_url`` overrides the endpoint for S3-compatible stores.
    Timeouts are short and botocore retries little: the callers have their own backoff, and a
    store that does not answer must not hold up a shutdown.
    """

    def __init__(
        self,
        location: S3Location,
        endpoint_url: str | None = None,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        connections: int = 16,
    ) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise StoreError(f"{location} needs boto3, which is not installed: {INSTALL_HINT}") from None
        self.location = location
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": 2},
            max_pool_connections=connections,
        )
        try:
            # A session of our own: boto3's default session is shared and not thread-safe to create.
            session = boto3.session.Session()
            self.client: Any = session.client("s3", endpoint_url=endpoint_url or None, config=config)
        except Exception as exc:
            raise StoreError(f"cannot set up the S3 client for {location}: {_reason(exc)}") from None

    def put(self, key: str, data: bytes) -> None:
        extra = {}
        for suffix, content_type in CONTENT_TYPES.items():
            if key.endswith(suffix):
                extra["ContentType"] = content_type
                break
        try:
            self.client.put_object(Bucket=self.location.bucket, Key=key, Body=data, **extra)
        except Exception as exc:
            raise StoreError(f"cannot upload {key} to {self.location}: {_reason(exc)}") from None

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.location.bucket, Key=key)
            return bytes(response["Body"].read())
        except Exception as exc:
            error = MissingObject if _missing(exc) else StoreError
            raise error(f"cannot download {key} from {self.location}: {_reason(exc)}") from None

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object whose key starts with ``prefix``, in key order."""
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=prefix
            )
            for page in pages:
                for item in page.get("Contents") or ():
                    yield str(item["Key"]), int(item.get("Size") or 0)
        except Exception as exc:
            raise StoreError(f"cannot list {self.location}: {_reason(exc)}") from None
