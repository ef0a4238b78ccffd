"""Which reports: a query's keys (``--status 5xx``, ``label=v1,path=^/api`` on one side of a diff,
the web page's form), what each matches, and the orders a list can be sorted in."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..directory import KIND_DROPPED, KIND_REQUEST, KIND_WORKER, report_name
from ..inputs import parse_regex, parse_seconds, parse_time
from .entry import Entry

#: The kinds of record: a report per request, a per-worker window, and the reports a worker dropped
#: after its last kept one (no profile: left out of every selection that does not ask for them).
KINDS = (KIND_REQUEST, KIND_WORKER, KIND_DROPPED)

#: The keys that select the reports a worker dropped: who and when. The others select by what a
#: request was, which a dropped report does not record.
DROP_KEYS = ("since", "until", "worker", "label")

# The values that only a query has; each parser raises ValueError with a short message.


def status_range(text: str) -> tuple[int, int]:
    """``404`` → (404, 404); ``5xx`` → (500, 599)."""
    text = text.strip().lower()
    if re.fullmatch(r"[1-5]\d\d", text):
        return int(text), int(text)
    if re.fullmatch(r"[1-5]xx", text):
        return int(text[0]) * 100, int(text[0]) * 100 + 99
    raise ValueError(f"not a status code or class like 5xx: {text!r}")


def parse_status(text: str) -> str:
    status_range(text)
    return text.strip().lower()


def parse_kind(text: str) -> str:
    if text not in KINDS:
        raise ValueError(f"not a kind: {text!r} (request, worker or dropped)")
    return text


def parse_word(text: str) -> str:
    if not text:
        raise ValueError("empty value")
    return text


#: Every key of a query, with the parser of its value as typed.
QUERY_KEYS: dict[str, Callable[[str], Any]] = {
    "path": parse_regex,
    "method": parse_word,
    "status": parse_status,
    "min_duration": parse_seconds,
    "label": parse_word,
    "since": parse_time,
    "until": parse_time,
    "worker": parse_word,
    "kind": parse_kind,
    "endpoint": parse_word,
}

#: The orders of a list, with the column each sorts by.
ORDERS = {
    "time": "start",
    "duration": "duration",
    "path": "path",
    "status": "status",
    "method": "method",
    "label": "label",
    "samples": "samples",
    "rate": "rate",
    "sampler": "sampler_share",
    "name": "name",
}


def strip_suffix(name: str) -> str:
    """A report name from a file name or path given by a user."""
    name = os.path.basename(name)
    return report_name(name) or name


@dataclass(frozen=True)
class Query:
    """Which reports: every field that is set must match."""

    path: re.Pattern[str] | None = None  # re.search on the (decoded) path
    method: str | None = None
    status: str | None = None  # "200", or a class: "5xx"
    min_duration: float | None = None  # seconds
    label: str | None = None
    since: float | None = None  # epoch seconds, on the start time
    until: float | None = None
    worker: str | None = None  # a pid, a worker instance, PID-INSTANCE, or a host name
    kind: str | None = None  # "request" or "worker"
    endpoint: str | None = None  # "GET /users/{n}", as top() names it
    names: tuple[str, ...] = ()

    def sql(self, every_kind: bool = False) -> tuple[str, list[Any]]:
        """The part of the query SQLite can answer; :meth:`matches` does the rest. Records of dropped
        reports only when asked for, by ``kind`` or ``every_kind``."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.kind is None and not every_kind:
            clauses.append("kind != ?")
            params.append(KIND_DROPPED)
        if self.method is not None:
            clauses.append("method = ?")
            params.append(self.method.upper())
        if self.min_duration is not None:
            clauses.append("duration >= ?")
            params.append(self.min_duration)
        if self.label is not None:
            clauses.append("label = ?")
            params.append(self.label)
        if self.since is not None:
            clauses.append("start >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append("start <= ?")
            params.append(self.until)
        if self.kind is not None:
            clauses.append("kind = ?")
            params.append(self.kind)
        if self.status is not None:
            low, high = status_range(self.status)
            clauses.append("status BETWEEN ? AND ?")
            params += [low, high]
        if self.names:
            clauses.append(f"name IN ({','.join('?' * len(self.names))})")
            params += list(self.names)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def for_drops(self) -> Query:
        """The part of this query that selects dropped reports (:data:`DROP_KEYS`)."""
        return Query(**{k: v for k, v in self.fields().items() if k in DROP_KEYS})

    def fields(self) -> dict[str, Any]:
        """The keys that are set."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, ())}

    @classmethod
    def parse(cls, values: dict[str, str], base: Query | None = None) -> Query:
        """A query from text values by key (a web form); empty values are ignored."""
        fields = base.fields() if base is not None else {}
        for key, text in values.items():
            if key not in QUERY_KEYS:
                raise ValueError(f"unknown selection key {key!r}: expected one of {', '.join(QUERY_KEYS)}")
            if text.strip():
                fields[key] = QUERY_KEYS[key](text.strip())
        return cls(**fields)

    def narrowed(self, text: str) -> Query:
        """This query narrowed by ``key=value[,key=value...]`` (``label=v1,path=^/api``; keys as in
        QUERY_KEYS, dashes or underscores), or by a report name when there is no ``=``."""
        if "=" not in text:
            return Query(**{**self.fields(), "names": (strip_suffix(text),)})
        keys = {k.replace("_", "-"): k for k in QUERY_KEYS} | {k: k for k in QUERY_KEYS}
        # A comma starts a new pair only before a known key, so a regex may hold commas.
        pattern = r",(?=(?:" + "|".join(map(re.escape, keys)) + r")=)"
        values: dict[str, str] = {}
        for part in re.split(pattern, text):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in keys:
                expected = ", ".join(k.replace("_", "-") for k in QUERY_KEYS)
                raise ValueError(f"bad selection {text!r}: expected KEY=VALUE with KEY one of {expected}")
            values[keys[key.strip()]] = value
        return Query.parse(values, self)

    def filters_entries(self) -> bool:
        """Whether :meth:`matches` has anything to check beyond what :meth:`sql` selects."""
        return self.path is not None or self.endpoint is not None or self.worker is not None

    def matches(self, entry: Entry) -> bool:
        if self.path is not None and (entry.path is None or not self.path.search(entry.path)):
            return False
        if self.endpoint is not None and entry.endpoint != self.endpoint:
            return False
        return self.matches_worker(entry.pid, entry.instance, entry.hostname)

    def matches_worker(self, pid: int, instance: str, hostname: str) -> bool:
        return self.worker is None or self.worker in (str(pid), instance, f"{pid}-{instance}", hostname)
