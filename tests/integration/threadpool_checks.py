"""Shared by the tests of work a request hands over (``test_threadpools_*.py``, ``test_gevent_waits.py``):
one real gunicorn per worker class × engine, started by a module-scoped fixture that sends all of
the module's requests and stops the server; each test then checks one thing in the reports.

The apps measure their own work with ``time.perf_counter`` and answer the seconds in ``X-*-Seconds``
headers; a report must show the same time, within :data:`REL`, with the function on the stack.
Every request has a path of its own (``/kind/<n>``), so a reply and its report pair up by path.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support import (
    CONFIG_FILE,
    HTTP_SECONDS,
    Gunicorn,
    GunicornFactory,
    load_session,
    metadata_records,
    profiling_env,
    skip_unless_worker_class_exists,
)

#: How far a report's time may be from the app's own measure.
REL = 0.15
#: Shorter requests are not kept; every server runs with it, and gets a few fast requests.
MIN_DURATION = 0.05

#: The settings of each engine: the sampler at 500 Hz, so 15 % of ~80 ms is several samples (with
#: no budget, which would slow it down to keep its cost under 1 %).
ENGINES: dict[str, dict[str, str]] = {
    "pyinstrument": {},
    "sampler": {"ENGINE": "sampler", "INTERVAL": "0.002", "MAX_OVERHEAD": "off"},
}
ASGI_WORKERS = ("asgi", "uvicorn_worker.UvicornWorker")
ASGI_CASES = [pytest.param((w, e), id=f"{w.rsplit('.', 1)[-1]}-{e}") for w in ASGI_WORKERS for e in ENGINES]


def skip_unless_worker_exists(worker: str) -> None:
    skip_unless_worker_class_exists(["-k", worker])


# --- HTTP, with the response headers ---


@dataclass
class Reply:
    path: str
    status: int
    body: bytes
    headers: dict[str, str]  #: by lower-case name

    def seconds(self, header: str) -> float:
        """A time the app measured, from its ``X-…-Seconds`` header."""
        return float(self.headers[header.lower()])


def fetch(base_url: str, path: str, timeout: float = HTTP_SECONDS) -> Reply:
    host, _, port = base_url.removeprefix("http://").partition(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Reply(path.partition("?")[0], response.status, body, headers)
    finally:
        conn.close()


def fetch_all(base_url: str, paths: Sequence[str]) -> list[Reply]:
    """Every path at once, from as many client threads; replies in the order of ``paths``."""
    with ThreadPoolExecutor(max_workers=len(paths)) as pool:
        return list(pool.map(lambda p: fetch(base_url, p), paths))


# --- one server per module and case ---


@contextlib.contextmanager
def module_gunicorn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GunicornFactory]:
    """The ``gunicorn`` fixture, for a module-scoped one: servers stopped by pid on the way out."""
    factory = GunicornFactory(tmp_path_factory.mktemp("gunicorn-logs"))
    try:
        yield factory
    finally:
        factory.cleanup()


def start(
    factory: GunicornFactory,
    report_dir: Path,
    worker: Sequence[str],
    app: str,
    engine: str,
    env: Mapping[str, str] | None = None,
) -> Gunicorn:
    settings = {"FORMATS": "session", "MIN_DURATION": str(MIN_DURATION), **ENGINES[engine]}
    return factory(
        "-c", CONFIG_FILE, *worker, app, env={**profiling_env(report_dir, **settings), **(env or {})}
    )


@dataclass(frozen=True)
class Requests:
    """What a module's server is sent, in this order: ``/<fast>/0``; then per round ``n`` the ``slow``
    targets (``{n}`` is the round) and ``/<fast>/<n>``, one at a time; last ``concurrent``, all at once."""

    fast: str
    slow: Sequence[str]
    rounds: Sequence[int]
    concurrent: Sequence[str] = ()

    def send(self, base_url: str) -> list[Reply]:
        replies = [fetch(base_url, f"/{self.fast}/0")]
        for n in self.rounds:
            replies += [fetch(base_url, target.format(n=n)) for target in self.slow]
            replies.append(fetch(base_url, f"/{self.fast}/{n}"))
        return replies + (fetch_all(base_url, self.concurrent) if self.concurrent else [])


def serve(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    worker: Sequence[str],
    app: str,
    engine: str,
    requests: Requests,
    env: Mapping[str, str] | None = None,
) -> Served:
    """One server of a module's case: started, sent ``requests``, stopped, and what it wrote read back."""
    report_dir = tmp_path_factory.mktemp(name) / "reports"
    with module_gunicorn(tmp_path_factory) as factory:
        server = start(factory, report_dir, worker, app, engine, env)
        return finish(server, engine, report_dir, requests.send(server.url))


def asgi_served(name: str, app: str, requests: Requests) -> Any:
    """A module's ``served`` fixture (``served = asgi_served(...)``): one server of ``app`` per
    :data:`ASGI_CASES` case (a worker of the class, the engine), module-scoped; a case whose worker
    class is not installed is skipped."""

    @pytest.fixture(scope="module", params=ASGI_CASES)
    def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Served:
        worker, engine = request.param
        skip_unless_worker_exists(worker)
        return serve(tmp_path_factory, name, ["-k", worker, "-w", "1"], app, engine, requests)

    return served


@dataclass
class Served:
    """What one server answered and wrote, once it has stopped."""

    engine: str  #: as in :data:`ENGINES`
    report_dir: Path
    replies: dict[str, Reply]  #: by path
    records: list[dict[str, Any]]
    log: str
    exit_status: int
    _sessions: dict[str, Any] = field(default_factory=dict)

    def reply(self, path: str) -> Reply:
        return self.replies[path]

    def paths(self, kind: str) -> list[str]:
        """The paths of the requests of one kind (``/kind/<n>``), in the order sent."""
        return [p for p in self.replies if p.startswith(f"/{kind}/")]

    def record(self, path: str) -> dict[str, Any]:
        found = [r for r in self.records if r["path"] == path]
        assert len(found) == 1, f"{len(found)} reports for {path}: {[r['path'] for r in self.records]}"
        return found[0]

    def session(self, path: str) -> Any:
        if path not in self._sessions:
            self._sessions[path] = load_session(self.report_dir / self.record(path)["files"]["session"])
        return self._sessions[path]


def finish(server: Gunicorn, engine: str, report_dir: Path, replies: Iterable[Reply]) -> Served:
    """Stop the server (its writer flushes: every report that will be written has been) and read back."""
    replies = list(replies)
    status = server.stop()
    by_path = {r.path: r for r in replies}
    assert len(by_path) == len(replies), "every request needs a path of its own"
    return Served(engine, report_dir, by_path, metadata_records(report_dir), server.log, status)


# --- reading sessions ---


@dataclass(frozen=True)
class Fn:
    """A function in a frame identifier (``name\\x00file\\x00line\\x01c<class>\\x01l<line>``): by
    name, and where given, by the end of its file name and its class."""

    name: str
    file: str | None = None
    cls: str | None = None

    def matches(self, frame: str) -> bool:
        head, *attributes = frame.split("\x01")
        name, _, rest = head.partition("\x00")
        if name != self.name:
            return False
        if self.file is not None and not rest.partition("\x00")[0].endswith(self.file):
            return False
        return self.cls is None or f"c{self.cls}" in attributes

    def __str__(self) -> str:
        where = f" in {self.file}" if self.file else ""
        return f"{self.cls + '.' if self.cls else ''}{self.name}{where}"


def _fn(function: str | Fn) -> Fn:
    return function if isinstance(function, Fn) else Fn(function)


def _holds_chain(stack: Sequence[str], chain: Sequence[Fn]) -> bool:
    """Are the functions of ``chain`` on the stack, in this order from the root (not necessarily
    adjacent)?"""
    frames = iter(stack)
    return all(any(fn.matches(frame) for frame in frames) for fn in chain)


def seconds_in(session: Any, *chain: str | Fn) -> float:
    """Time with the last function of ``chain`` on the stack, below the others in their order."""
    fns = [_fn(f) for f in chain]
    return sum(t for stack, t in session.frame_records if _holds_chain(stack, fns))


def names_in(session: Any) -> set[str]:
    return {frame.split("\x00", 1)[0] for stack, _ in session.frame_records for frame in stack}


def summary(session: Any, leaves: int = 6, lines: int = 8) -> str:
    """The heaviest stacks (their last ``leaves`` functions), for failure messages."""
    totals: dict[str, float] = {}
    for stack, t in session.frame_records:
        key = " > ".join(frame.split("\x00", 1)[0] for frame in stack[-leaves:])
        totals[key] = totals.get(key, 0.0) + t
    heaviest = sorted(totals.items(), key=lambda item: -item[1])[:lines]
    return "\n".join(f"  {t * 1000:7.1f} ms  {key}" for key, t in heaviest)


def assert_timed(session: Any, measured: float, *chain: str | Fn, rel: float = REL) -> None:
    """The report's time in the last function of ``chain`` (under the others) is ``measured`` ± ``rel``."""
    reported = seconds_in(session, *chain)
    what = " > ".join(str(_fn(f)) for f in chain)
    assert reported == pytest.approx(measured, rel=rel), (
        f"{what}: {reported * 1000:.1f} ms in the report, {measured * 1000:.1f} ms measured by the app; "
        f"the report's heaviest stacks:\n{summary(session)}"
    )


# --- checks shared by the modules ---


def check_only_slow_requests_kept(served: Served, fast_kind: str = "fast") -> None:
    """Every slow request has its report; a fast one only if the machine made it slow (its
    duration then says so), and at least one fast request had none."""
    fast = set(served.paths(fast_kind))
    assert fast
    slow = [p for p in served.replies if p not in fast]
    assert all(served.replies[p].status == 200 for p in served.replies)
    kept = {r["path"] for r in served.records}
    assert not [p for p in slow if p not in kept], f"slow requests without a report: {sorted(kept)}"
    for record in served.records:
        assert record["duration"] >= MIN_DURATION, record
    assert fast - kept, "every fast request has a report"
    assert served.exit_status == 0, served.log


def check_made_by_the_engine(served: Served) -> None:
    """The reports come from the engine asked for, not a fallback: the sampler reads stacks from a
    thread of its own and records no CPU time; pyinstrument's profiler measures it."""
    assert served.records
    for record in served.records:
        session = served.session(record["path"])
        if served.engine == "sampler":
            assert session.cpu_time == 0.0, f"{record['path']}: not the sampler's session"
        else:
            assert session.cpu_time > 0, f"{record['path']}: not pyinstrument's session"


def check_none_of_the_others(served: Served, own_and_other: Mapping[str, tuple[str, str]]) -> None:
    """Concurrent requests, by kind (``{"red": ("red_work", "blue_work"), ...}``): no report holds
    the other kind's function, and the requests overlapped in time (else isolation is not being
    tested)."""
    records = []
    for kind, (_own, other) in own_and_other.items():
        assert served.paths(kind)
        for path in served.paths(kind):
            session = served.session(path)
            assert other not in names_in(session), f"{path} has {other}:\n{summary(session)}"
            records.append(served.record(path))
    spans = sorted((r["start"], r["start"] + r["duration"]) for r in records)
    assert any(b_start < a_end for (_, a_end), (b_start, _) in itertools.pairwise(spans)), spans


def check_each_has_its_own(served: Served, own_and_other: Mapping[str, tuple[str, str]]) -> None:
    """The same requests: every report holds its own request's function."""
    lacking = []
    for kind, (own, _other) in own_and_other.items():
        for path in served.paths(kind):
            if own not in names_in(served.session(path)):
                lacking.append(path)
    total = sum(len(served.paths(kind)) for kind in own_and_other)
    first = served.session(lacking[0]) if lacking else None
    assert not lacking, (
        f"{len(lacking)} of {total} reports lack their own function: {lacking}; the first:\n{summary(first)}"
    )


class SharedChecks:
    """The checks every module runs on its server's reports (its module-scoped ``served`` fixture):
    a ``Test…`` class of the module inherits them, naming what its server was sent and the
    functions of its concurrent requests (as in :func:`check_none_of_the_others`)."""

    sent: Requests
    own_and_other: Mapping[str, tuple[str, str]]

    def test_the_reports_are_made_by_the_engine_asked_for(self, served: Served) -> None:
        check_made_by_the_engine(served)

    def test_only_slow_requests_are_kept(self, served: Served) -> None:
        check_only_slow_requests_kept(served, self.sent.fast)

    def test_concurrent_requests_hold_none_of_the_others_work(self, served: Served) -> None:
        check_none_of_the_others(served, self.own_and_other)

    def test_concurrent_requests_each_hold_their_own_work(self, served: Served) -> None:
        check_each_has_its_own(served, self.own_and_other)
