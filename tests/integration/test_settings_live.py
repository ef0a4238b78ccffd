"""Each setting's effect on a real server."""

from __future__ import annotations

import os
import stat

from support import (
    CONFIG_FILE,
    FLASK_APP,
    REPO_ROOT,
    get,
    load_session,
    metadata_records,
    profiling_env,
    report_files,
    report_functions,
    spool_files,
    wait_for_metadata,
)

TOKEN = "integration-token-0123456789abcdef"
TOKEN_HEADER = "X-Pyinstrument-Token"


def start(gunicorn, report_dir, *args, **settings):
    return gunicorn("-c", CONFIG_FILE, "-w", "1", *args, FLASK_APP, env=profiling_env(report_dir, **settings))


def test_sample_rate_half(gunicorn, report_dir):
    server = start(gunicorn, report_dir, FORMATS="session", SAMPLE_RATE="0.5")
    for _ in range(200):
        assert get(server.url + "/") == (200, b"ok")
    assert server.stop() == 0
    kept = len(metadata_records(report_dir))
    # Binomial(200, 0.5): mean 100, standard deviation about 7; this range is over 5 deviations wide.
    assert 60 <= kept <= 140, kept


def test_min_duration(gunicorn, report_dir):
    server = start(gunicorn, report_dir, FORMATS="session", MIN_DURATION="0.3")
    assert get(server.url + "/sleep?s=0.05") == (200, b"slept")
    assert get(server.url + "/sleep?s=0.4") == (200, b"slept")
    assert server.stop() == 0
    records = metadata_records(report_dir)
    assert [r["path"] for r in records] == ["/sleep"]
    assert records[0]["duration"] >= 0.4
    # Nothing of the short request was left behind, not even a session.
    assert len(report_files(report_dir)) == 2


def test_include_and_exclude(gunicorn, report_dir):
    server = start(
        gunicorn, report_dir, FORMATS="session", INCLUDE="alpha|beta|^/users/|^/café$", EXCLUDE="beta|/9"
    )
    targets = [
        "/",
        "/alpha?s=0.01",
        "/beta?s=0.01",
        "/users/1",
        "/users/9",
        "/%61lpha?s=0.01",  # percent-decoded before matching: /alpha
        "/other?q=alpha",  # the query string is not matched
        "/caf%C3%A9?x=1",  # /café
    ]
    for target in targets:
        assert get(server.url + target)[0] == 200, target
    assert server.stop() == 0
    assert [r["path"] for r in metadata_records(report_dir)] == ["/alpha", "/users/1", "/alpha", "/café"]


def test_token_overrides_rate_filters_and_min_duration(gunicorn, report_dir):
    server = start(
        gunicorn,
        report_dir,
        FORMATS="session,html,text",
        SAMPLE_RATE="0",
        EXCLUDE="^/alpha",
        MIN_DURATION="5",
        TOKEN=TOKEN,
    )
    url = server.url + "/alpha?s=0.03"
    plain = get(url)
    wrong = [
        get(url, {TOKEN_HEADER: TOKEN[:-1]}),  # a prefix
        get(url, {TOKEN_HEADER: TOKEN[:-1] + "X"}),  # same length, last character differs
        get(url, {TOKEN_HEADER: TOKEN + "X"}),  # longer
        get(url, {TOKEN_HEADER: ""}),
        get(url, {TOKEN_HEADER.lower() + "-other": TOKEN}),  # another header
    ]
    assert get(server.url + "/") == (200, b"ok")  # SAMPLE_RATE=0: not profiled
    triggered = get(url, {TOKEN_HEADER: TOKEN})
    triggered_lower = get(url, {TOKEN_HEADER.lower(): TOKEN})  # header names are case-insensitive
    assert server.stop() == 0

    # The token changes nothing in the response.
    assert plain == triggered == triggered_lower == (200, b"alpha")
    assert all(reply == plain for reply in wrong)

    records = metadata_records(report_dir)
    assert [(r["path"], r["trigger"]) for r in records] == [("/alpha", "token"), ("/alpha", "token")]
    for record in records:
        assert record["duration"] < 5  # kept despite MIN_DURATION
        assert "alpha_work" in report_functions(report_dir, record)
        assert set(record["files"]) == {"session", "html", "text"}

    # The token is stored nowhere and logged nowhere.
    for path in [*report_files(report_dir), *spool_files(report_dir)]:
        assert TOKEN.encode() not in path.read_bytes(), path.name
    assert TOKEN not in server.log


def test_interval_label_and_file_mode(gunicorn, report_dir):
    server = start(
        gunicorn, report_dir, FORMATS="session,text", INTERVAL="0.01", LABEL="build 7f3c", FILE_MODE="0640"
    )
    assert get(server.url + "/alpha?s=0.2") == (200, b"alpha")
    assert server.stop() == 0
    [record] = metadata_records(report_dir)
    assert record["interval"] == 0.01
    assert record["label"] == "build 7f3c"
    session = load_session(report_dir / record["files"]["session"])
    assert session.min_interval == 0.01
    # At most about 20 samples in 0.2 s, where the default interval takes up to 200.
    assert 2 <= session.sample_count <= 40
    # Group-readable files; the directory is then group-traversable too.
    assert stat.S_IMODE(os.stat(report_dir).st_mode) == 0o750
    files = report_files(report_dir)
    assert len(files) == 3
    for path in files:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o640, path.name


def test_formats_session_only_needs_no_renderer(gunicorn, report_dir):
    server = start(gunicorn, report_dir, FORMATS="session")
    assert get(server.url + "/alpha?s=0.02") == (200, b"alpha")
    assert get(server.url + "/beta?s=0.02") == (200, b"beta")
    # Written by the worker's writer thread alone: complete without stopping the server.
    assert len(wait_for_metadata(report_dir, 2)) == 2
    assert spool_files(report_dir) == []
    assert server.stop() == 0
    records = metadata_records(report_dir)
    assert len(records) == 2
    assert spool_files(report_dir) == []
    assert sorted(p.name for p in report_files(report_dir)) == sorted(
        name for r in records for name in (r["name"] + ".pyisession", r["name"] + ".meta.json")
    )
    assert all(r["files"] == {"session": r["name"] + ".pyisession"} for r in records)


def test_formats_without_session_keep_no_session(gunicorn, report_dir):
    server = start(gunicorn, report_dir, FORMATS="text,pstats")
    assert get(server.url + "/alpha?s=0.03") == (200, b"alpha")
    assert server.stop() == 0
    [record] = metadata_records(report_dir)
    assert record["files"] == {"text": record["name"] + ".txt", "pstats": record["name"] + ".pstats"}
    assert sorted(p.name for p in report_files(report_dir)) == sorted(
        [record["name"] + ".txt", record["name"] + ".pstats", record["name"] + ".meta.json"]
    )
    assert spool_files(report_dir) == []  # the spooled session was removed once rendered
    assert "alpha_work" in (report_dir / record["files"]["text"]).read_text()


def test_sample_rate_zero_profiles_nothing(gunicorn, report_dir):
    server = start(gunicorn, report_dir, SAMPLE_RATE="0")
    for target in ["/", "/alpha?s=0.01", "/error"]:
        get(server.url + target)
    assert server.stop() == 0
    assert metadata_records(report_dir) == []
    assert report_files(report_dir) == []
    assert spool_files(report_dir) == []


def test_an_existing_directory_keeps_its_permissions(gunicorn, report_dir):
    report_dir.mkdir(mode=0o755)
    os.chmod(report_dir, 0o755)
    server = start(gunicorn, report_dir, FORMATS="session")
    assert get(server.url + "/") == (200, b"ok")
    assert server.stop() == 0
    assert stat.S_IMODE(os.stat(report_dir).st_mode) == 0o755
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in report_files(report_dir)} == {0o600}


def test_relative_directory_is_taken_from_where_gunicorn_starts(gunicorn, tmp_path):
    start_dir = tmp_path / "start"
    app_dir = tmp_path / "app"
    start_dir.mkdir()
    app_dir.mkdir()
    env = profiling_env("relative-reports", FORMATS="session")
    env["PYTHONPATH"] = str(REPO_ROOT)
    server = gunicorn("-c", CONFIG_FILE, "--chdir", str(app_dir), FLASK_APP, env=env, cwd=start_dir)
    assert get(server.url + "/") == (200, b"ok")
    assert server.stop() == 0
    assert len(metadata_records(start_dir / "relative-reports")) == 1
    assert os.listdir(app_dir) == []
