"""Reports: file-name sanitizing, naming, time stamps, status codes and metadata."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from datetime import datetime, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gunicorn_pyinstrument.directory import (
    FAILED_SUFFIX,
    FORMAT_SUFFIXES,
    JOB_SUFFIX,
    METADATA_SUFFIX,
    TEMP_PREFIX,
)
from gunicorn_pyinstrument.report import (
    MAX_PATH_PART,
    OUTCOME_TIMEOUT,
    DropFacts,
    Dropped,
    Report,
    RequestFacts,
    WindowFacts,
    WorkerIdentity,
    iso_time,
    sanitize_method,
    sanitize_path,
    status_code,
    utc_stamp,
)
from gunicorn_pyinstrument.stores.local import check_name

SAFE = re.compile(r"[A-Za-z0-9._-]+")
NAME = re.compile(r"[0-9][A-Za-z0-9._-]*")
ALL_TEXT = st.characters(exclude_categories=())
NASTY_PATH = st.one_of(
    st.text(ALL_TEXT, max_size=300),
    st.lists(
        st.sampled_from(["..", ".", "/", "\x00", "%2e", "\\", "a", "\udcff", "-", "_"]), max_size=60
    ).map("".join),
)
EVERY_SUFFIX = [*FORMAT_SUFFIXES.values(), METADATA_SUFFIX, JOB_SUFFIX, JOB_SUFFIX + FAILED_SUFFIX]


def identity(pid: int = 4242, instance: str = "a1b2c3") -> WorkerIdentity:
    return WorkerIdentity(pid=pid, age=3, worker_class="SyncWorker", hostname="web-1", instance=instance)


def facts(
    method: str = "GET",
    path: str = "/api/users",
    started_at: float = 1_764_167_778.123456,
    duration: float = 0.25,
    status: int | None = 200,
    query: str | None = None,
    headers: dict[str, str] | None = None,
) -> RequestFacts:
    return RequestFacts(
        method=method,
        path=path,
        status=status,
        started_at=started_at,
        duration=duration,
        trigger="sample",
        query=query,
        headers=headers,
    )


# --- sanitize_path ---


@given(NASTY_PATH)
@example("")
@example("..")
@example("../../etc/passwd")
@example("/" * 100)
@example("." * 100)
@example("a\x00b")
@example("\ud800\udfff")
@example("x" * 8192)
@example("/é" * 4096)
def test_sanitize_path_is_always_a_safe_name_part(path):
    safe = sanitize_path(path)
    assert SAFE.fullmatch(safe), safe
    assert not safe.startswith(".")
    assert "/" not in safe
    assert 1 <= len(safe) <= MAX_PATH_PART


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "root"),
        ("", "root"),
        ("/api/users/42", "api_users_42"),
        ("/../../etc/passwd", "etc_passwd"),
        ("/static/app.min.js", "static_app.min.js"),
        ("/café/ünïcode", "caf_n_code"),
    ],
)
def test_sanitize_path_examples(path, expected):
    assert sanitize_path(path) == expected


@given(st.text(ALL_TEXT, max_size=100))
def test_sanitize_method_is_upper_alphanumeric(method):
    assert re.fullmatch(r"[A-Z0-9]{1,16}", sanitize_method(method))


# --- names ---


@given(
    method=st.text(ALL_TEXT, max_size=200),
    path=NASTY_PATH,
    started_at=st.floats(0, 4_102_444_800),  # up to 2100
    duration=st.floats(0, 1e7),
    pid=st.integers(1, 2**22),
    sequence=st.integers(1, 10**15),
    outcome=st.sampled_from(["", OUTCOME_TIMEOUT]),
)
def test_make_name_is_a_valid_file_name(method, path, started_at, duration, pid, sequence, outcome):
    f = dataclasses.replace(facts(method, path, started_at, duration), outcome=outcome)
    name = Report.make_name(f, identity(pid), sequence)
    assert NAME.fullmatch(name), name
    for suffix in EVERY_SUFFIX:
        full = name + suffix
        assert len(full.encode("utf-8")) < 255
        assert check_name(full) == full
    # the store's temporary name must also fit
    assert len(f"{TEMP_PREFIX}{'0' * 12}-{name}{JOB_SUFFIX}") < 255


def test_make_name_differs_by_sequence_and_instance():
    f = facts()
    names = {Report.make_name(f, identity(), seq) for seq in range(1, 200)}
    assert len(names) == 199
    assert Report.make_name(f, identity(instance="aaaaaa"), 1) != Report.make_name(
        f, identity(instance="bbbbbb"), 1
    )
    assert Report.make_name(f, identity(pid=1), 1) != Report.make_name(f, identity(pid=2), 1)


def test_make_name_reads_well():
    name = Report.make_name(facts("post", "/api/users", 0.5, 0.0123), identity(), 7)
    assert name == "19700101T000000.500000Z_POST_api_users_12ms_4242-a1b2c3-7"


def test_timeout_outcome_marks_name_and_metadata():
    f = dataclasses.replace(facts(), outcome=OUTCOME_TIMEOUT)
    name = Report.make_name(f, identity(), 1)
    assert "_250ms_TIMEOUT_4242-" in name and NAME.fullmatch(name)
    report = Report(name, f, identity(), None, ("session",), 0, 0.001)
    assert report.metadata({})["outcome"] == OUTCOME_TIMEOUT


def test_worker_identity_instances_are_random():
    class SyncWorker:
        age = 5

    a, b = WorkerIdentity.current(SyncWorker()), WorkerIdentity.current(SyncWorker())
    assert a.instance != b.instance
    assert re.fullmatch(r"[0-9a-f]{6}", a.instance)
    assert a.worker_class == "SyncWorker" and a.age == 5


MICROS = st.integers(0, 4_102_444_800 * 10**6)


@given(st.lists(MICROS, min_size=2, max_size=20, unique=True), st.data())
def test_names_sort_in_time_order(micros, data):
    methods = data.draw(st.lists(st.sampled_from(["GET", "POST", "DELETE"]), min_size=len(micros)))
    paths = data.draw(st.lists(NASTY_PATH, min_size=len(micros)))
    names = [
        Report.make_name(facts(m, p, us / 1e6, 0.1), identity(), i)
        for i, (us, m, p) in enumerate(zip(micros, methods, paths, strict=False))
    ]
    by_time = [n for _, n in sorted(zip(micros, names, strict=True))]
    assert sorted(names) == by_time


@given(MICROS)
@example(0)
@example(999_999)
@example(1_000_000)
@example(1_764_167_778_999_999)
@example(1_764_167_779_000_000)
def test_utc_stamp_is_exact_to_the_microsecond(us):
    whole, micros = divmod(us, 10**6)
    expected = time.strftime("%Y%m%dT%H%M%S", time.gmtime(whole)) + f".{micros:06d}Z"
    assert utc_stamp(us / 1e6) == expected


@pytest.mark.parametrize(
    ("epoch", "stamp"),
    [
        (1.9999996, "19700101T000002.000000Z"),  # rounds up into the next second
        (1.9999994, "19700101T000001.999999Z"),
        (59.9999999, "19700101T000100.000000Z"),  # ... and the next minute
        (1_764_201_599.9999997, "20251127T000000.000000Z"),  # ... and the next day
    ],
)
def test_utc_stamp_microsecond_rollover(epoch, stamp):
    assert utc_stamp(epoch) == stamp
    assert re.fullmatch(r"\d{8}T\d{6}\.\d{6}Z", utc_stamp(epoch))


@given(MICROS)
def test_iso_time_is_parseable_and_agrees(us):
    expected = datetime.fromtimestamp(us // 10**6, timezone.utc).replace(microsecond=us % 10**6)
    # Python 3.10 reads no "Z" suffix; every later Python does.
    assert datetime.fromisoformat(iso_time(us / 1e6).replace("Z", "+00:00")) == expected


# --- status codes ---


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("200 OK", 200),
        ("404 Not Found", 404),
        ("500", 500),
        (404, 404),
        (None, None),
        ("garbage", None),
        ("", None),
        (" 200 OK", None),
        ("-1 nope", None),
        (b"200 OK", None),
        (200.0, None),
    ],
)
def test_status_code(status, code):
    assert status_code(status) == code


@given(st.text(ALL_TEXT, max_size=12))
@example("²00 OK")
def test_status_code_never_raises_on_any_text(status):
    code = status_code(status)
    assert code is None or isinstance(code, int)


# --- metadata ---


def test_metadata_has_the_documented_keys_and_no_request_details():
    f = facts(path="/search", duration=0.1234567)
    report = Report(
        name=Report.make_name(f, identity(), 3),
        facts=f,
        worker=identity(),
        label="release 7",
        formats=("session", "html"),
        samples=120,
        interval=0.001,
    )
    files = {"session": report.filename("session"), "html": report.filename("html")}
    meta = report.metadata(files)
    assert set(meta) == {
        "version",
        "kind",
        "name",
        "time",
        "start",
        "end",
        "method",
        "path",
        "query",
        "headers",
        "status",
        "duration",
        "trigger",
        "outcome",
        "label",
        "hostname",
        "pid",
        "worker",
        "samples",
        "interval",
        "rate",
        "sampler_cpu",
        "sampler_share",
        "over_budget",
        "dropped",
        "files",
    }
    # Nothing dropped before it unless the writer says so.
    assert meta["dropped"] == {"queue_full": 0, "spool_full": 0}
    # Nothing measured: the sampling fields are null.
    assert [meta[k] for k in ("rate", "sampler_cpu", "sampler_share", "over_budget")] == [None] * 4
    # Nothing from the request beyond method and path unless the user opted in.
    assert meta["query"] is None and meta["headers"] == {}
    assert set(meta["worker"]) == {"age", "class", "instance"}
    assert meta["version"] == 1
    assert meta["name"] == report.name
    assert meta["files"] == files
    assert meta["path"] == "/search"
    assert meta["duration"] == 0.123457
    assert meta["time"] == iso_time(f.started_at) and meta["start"] == f.started_at
    assert meta["outcome"] == "complete"
    assert meta["kind"] == "request"
    assert meta["end"] == round(f.started_at + f.duration, 6)
    assert report.filename("html") == report.name + ".html"
    assert report.metadata_name == report.name + ".meta.json"
    text = json.dumps(meta)  # JSON-serializable as is
    assert "?" not in text and "cookie" not in text.lower()


def test_metadata_holds_the_query_and_headers_only_as_recorded():
    f = facts(path="/search", query="q=1&email=a%40b", headers={"user-agent": "curl/8"})
    report = Report(
        name=Report.make_name(f, identity(), 1),
        facts=f,
        worker=identity(),
        label=None,
        formats=("session",),
        samples=1,
        interval=0.001,
    )
    meta = report.metadata({})
    assert meta["query"] == "q=1&email=a%40b" and meta["headers"] == {"user-agent": "curl/8"}
    assert "q=1" not in report.name  # never in a file name


def test_window_reports_have_the_same_keys_with_nulls_for_request_details():
    window = WindowFacts(started_at=1_795_000_000.25, duration=60.0)
    request = facts(path="/search", duration=0.1)
    kwargs = {"worker": identity(), "label": None, "formats": ("session",), "samples": 5, "interval": 0.001}
    w = Report(name=Report.make_name(window, identity(), 1), facts=window, **kwargs)
    r = Report(name=Report.make_name(request, identity(), 2), facts=request, **kwargs)
    meta = w.metadata({})
    assert set(meta) == set(r.metadata({}))
    assert meta["kind"] == "worker" and meta["trigger"] == "worker"
    assert meta["method"] is None and meta["path"] is None and meta["status"] is None
    assert meta["end"] == 1_795_000_060.25
    assert "_WORKER_window_60000ms_" in w.name


def test_a_record_of_dropped_reports_has_the_same_keys_and_no_request():
    span = DropFacts(started_at=1_795_000_000.5, duration=2.0)
    kwargs = {"worker": identity(), "label": "v1", "formats": (), "samples": 0, "interval": 0.001}
    d = Report(name=Report.make_name(span, identity(), 9), facts=span, dropped=Dropped(3, 4), **kwargs)
    meta = d.metadata({})
    assert set(meta) == set(Report(name="r", facts=facts(), **kwargs).metadata({}))
    assert (meta["kind"], meta["trigger"], meta["files"]) == ("dropped", "dropped", {})
    assert meta["dropped"] == {"queue_full": 3, "spool_full": 4}
    assert meta["method"] is None and meta["path"] is None and meta["status"] is None
    assert (meta["start"], meta["end"], meta["label"]) == (1_795_000_000.5, 1_795_000_002.5, "v1")
    assert d.name.endswith("_WORKER_dropped_2000ms_4242-a1b2c3-9")
    assert Dropped(1, 2) + Dropped(3, 0) == Dropped(4, 2) and not Dropped() and Dropped(spool_full=1)
