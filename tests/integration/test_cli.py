"""The command line on the reports of a real server: gunicorn with two sync workers served the same
requests twice, as release v1 and as release v2 (in which ``render_page`` is slower). The installed
console script and ``python -m gunicorn_pyinstrument`` then read the directory; what they print is
checked against the metadata records, and the files they write are read back with pyinstrument's
loader, pstats and json."""

from __future__ import annotations

import datetime
import json
import math
import os
import pstats
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pyinstrument.session import Session
from support import (
    CONFIG_FILE,
    GunicornFactory,
    clean_env,
    get,
    metadata_records,
    profiling_env,
)

RELEASE_APP = "tests.apps.release_app:app"
SCRIPT = str(Path(sys.executable).parent / "gunicorn-pyinstrument")
ENTRY_POINTS = {"script": [SCRIPT], "module": [sys.executable, "-m", "gunicorn_pyinstrument"]}
UUID = "123e4567-e89b-12d3-a456-426614174000"
REQUESTS = [
    ("/users/1", 200),
    ("/users/22", 200),
    ("/users/333", 200),
    ("/users/4444", 200),
    (f"/orders/{UUID}", 200),
    ("/orders/7", 200),
    ("/health", 200),
    ("/health", 200),
    ("/missing", 404),
    ("/error", 500),
]
RELEASES = {"v1": "1", "v2": "6"}  # render_page: 10 ms, then 60 ms


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> tuple[Path, list[dict[str, Any]]]:
    """The report directory after both runs, and its metadata records (oldest first)."""
    base = tmp_path_factory.mktemp("cli")
    directory = base / "reports"
    logs = base / "logs"
    logs.mkdir()
    factory = GunicornFactory(logs)
    try:
        for label, slowdown in RELEASES.items():
            env = profiling_env(directory, FORMATS="session,html", LABEL=label)
            env["RELEASE_APP_SLOWDOWN"] = slowdown
            server = factory("-c", CONFIG_FILE, "-k", "sync", "-w", "2", RELEASE_APP, env=env)
            for target, status in REQUESTS:
                assert get(server.url + target)[0] == status, target
            assert server.stop() == 0
    finally:
        factory.cleanup()
    records = sorted(metadata_records(directory), key=lambda r: (r["start"], r["name"]))
    assert len(records) == len(RELEASES) * len(REQUESTS)
    assert all(set(r["files"]) == {"session", "html"} for r in records)
    return directory, records


@pytest.fixture
def work(tmp_path) -> Path:
    """Where the command runs (its default outputs land here)."""
    path = tmp_path / "work"
    path.mkdir()
    return path


def cli(
    *args: str,
    cwd: Path,
    directory: Path | None = None,
    entry: str = "script",
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the command; the directory, if given, in GUNICORN_PYINSTRUMENT_DIR."""
    environ = clean_env(env)
    if directory is not None:
        environ["GUNICORN_PYINSTRUMENT_DIR"] = str(directory)
    return subprocess.run(
        [*ENTRY_POINTS[entry], *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def listed(directory: Path, cwd: Path, *args: str) -> list[str]:
    """Names ``list --json`` gives for a selection, oldest first ([] for an empty selection)."""
    result = cli("list", "--json", "--limit", "0", "--ascending", *args, cwd=cwd, directory=directory)
    if result.returncode == 1:
        assert "no report matches the selection" in result.stderr
        return []
    return [r["name"] for r in json.loads(ok(result))]


def fold(path: str) -> str:
    parts = []
    for part in path.split("/"):
        if part.isdigit():
            part = "{n}"
        elif part == UUID:
            part = "{uuid}"
        parts.append(part)
    return "/".join(parts)


def iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat()


def copy_reports(directory: Path, destination: Path) -> Path:
    shutil.copytree(directory, destination, ignore=shutil.ignore_patterns(".catalog"))
    return destination


# --- list ---


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
@pytest.mark.parametrize("how", ["env", "option"])
def test_list_json_is_the_metadata(served, work, entry, how):
    directory, records = served
    if how == "env":
        result = cli("list", "--json", "--limit", "0", cwd=work, directory=directory, entry=entry)
    else:
        result = cli("--dir", str(directory), "list", "--json", "--limit", "0", cwd=work, entry=entry)
    items = json.loads(ok(result))
    assert result.stderr == ""
    assert [i["name"] for i in items] == [r["name"] for r in reversed(records)]  # newest first
    by_name = {r["name"]: r for r in records}
    for item in items:
        record = by_name[item["name"]]
        for key in ("kind", "start", "end", "method", "path", "status", "duration", "label", "hostname"):
            assert item[key] == record[key], key
        assert (item["pid"], item["instance"]) == (record["pid"], record["worker"]["instance"])
        assert item["samples"] == record["samples"]
        assert item["files"] == record["files"]
        assert item["endpoint"] == f"GET {fold(record['path'])}"
        size = sum(
            os.path.getsize(directory / f) for f in [item["name"] + ".meta.json", *record["files"].values()]
        )
        assert item["bytes"] == size


def test_list_table_and_default_limit(served, work):
    directory, records = served
    out = ok(cli("list", "--limit", "3", cwd=work, directory=directory))
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["time", "(UTC)", "method", "path"]
    assert [row.split()[-1] for row in rows] == [r["name"] for r in records[::-1][:3]]
    assert len(ok(cli("list", cwd=work, directory=directory)).splitlines()) == 1 + len(records)


def test_list_filters(served, work):
    directory, records = served
    middle = (records[7]["start"] + records[8]["start"]) / 2
    late = (records[15]["start"] + records[16]["start"]) / 2
    pid = records[0]["pid"]
    instance = records[-1]["worker"]["instance"]
    cases: list[tuple[list[str], Any]] = [
        (["--path", "^/users/"], lambda r: r["path"].startswith("/users/")),
        (["--path", r"/orders/\d+$"], lambda r: r["path"] == "/orders/7"),
        (["--method", "get"], lambda r: True),
        (["--method", "POST"], lambda r: False),
        (["--status", "404"], lambda r: r["status"] == 404),
        (["--status", "5xx"], lambda r: r["status"] == 500),
        (["--status", "2xx"], lambda r: r["status"] == 200),
        (["--min-duration", "40ms"], lambda r: r["duration"] >= 0.04),
        (["--label", "v2"], lambda r: r["label"] == "v2"),
        (["--since", iso(middle)], lambda r: r["start"] >= middle),
        (["--until", iso(middle)], lambda r: r["start"] <= middle),
        (["--since", iso(middle), "--until", iso(late)], lambda r: middle <= r["start"] <= late),
        (["--worker", str(pid)], lambda r: r["pid"] == pid),
        (["--worker", instance], lambda r: r["worker"]["instance"] == instance),
        (["--worker", f"{pid}-{records[0]['worker']['instance']}"], lambda r: r["pid"] == pid),
        (["--kind", "request"], lambda r: True),
        (["--kind", "worker"], lambda r: False),
        (["--endpoint", "GET /users/{n}"], lambda r: r["path"].startswith("/users/")),
        (["--endpoint", "GET /orders/{uuid}"], lambda r: r["path"] == f"/orders/{UUID}"),
        (["--label", "v1", "--status", "4xx"], lambda r: r["label"] == "v1" and r["status"] == 404),
    ]
    found_some = 0
    for args, wanted in cases:
        expected = [r["name"] for r in records if wanted(r)]
        assert listed(directory, work, *args) == expected, args
        found_some += 0 < len(expected) < len(records)
    assert found_some == len(cases) - 4  # all but get, POST, request and worker narrow the list


# --- top ---


def test_top_figures_are_those_of_the_metadata(served, work):
    directory, records = served
    stats = json.loads(ok(cli("top", "--json", cwd=work, directory=directory)))
    groups: dict[str, list[float]] = {}
    for record in records:
        groups.setdefault(f"{record['method']} {fold(record['path'])}", []).append(record["duration"])
    assert (
        {s["endpoint"] for s in stats}
        == set(groups)
        == {
            "GET /users/{n}",
            "GET /orders/{uuid}",
            "GET /orders/{n}",
            "GET /health",
            "GET /missing",
            "GET /error",
        }
    )
    for s in stats:
        values = sorted(groups[s["endpoint"]])
        n = len(values)
        assert s["count"] == n
        assert s["p50"] == values[math.ceil(0.5 * n) - 1]
        assert s["p95"] == values[math.ceil(0.95 * n) - 1]
        assert s["max"] == values[-1]
        assert s["total"] == pytest.approx(sum(values))
    assert stats[0]["endpoint"] == "GET /users/{n}"  # the most time in all
    assert stats[0]["count"] == 8
    # The table, and a selection.
    rows = ok(cli("top", "--label", "v1", "--sort", "count", cwd=work, directory=directory)).splitlines()
    assert rows[0].split()[:2] == ["endpoint", "count"]
    assert rows[1].split()[:3] == ["GET", "/users/{n}", "4"]
    assert len(rows) == 1 + 6


# --- render ---


def test_render_every_format(served, work):
    directory, records = served
    record = next(r for r in records if r["label"] == "v2" and r["path"] == "/users/333")
    name = record["name"]
    original = Session.load(directory / record["files"]["session"])

    ok(cli("render", name, cwd=work, directory=directory))  # default: html, NAME.html here
    assert "<html" in (work / f"{name}.html").read_text().lower()

    ok(cli("render", name, "-f", "speedscope", "-o", "out.json", cwd=work, directory=directory))
    speedscope = json.loads((work / "out.json").read_text())
    assert "render_page" in {f["name"] for f in speedscope["shared"]["frames"]}

    text = ok(cli("render", name + ".html", "-f", "text", cwd=work, directory=directory))
    assert "render_page" in text and "load_user" in text
    # One of the report's files by its path: the report, from that file's directory.
    text = ok(cli("render", str(directory / f"{name}.html"), "-f", "text", cwd=work))
    assert "render_page" in text

    ok(cli("render", name, "-f", "pstats", "-o", "out.pstats", cwd=work, directory=directory))
    stats = pstats.Stats(str(work / "out.pstats"))
    assert {"render_page", "load_user", "user"} <= {func for (_, _, func) in stats.stats}  # type: ignore[attr-defined]

    ok(cli("render", name, "-f", "session", "-o", "out.pyisession", cwd=work, directory=directory))
    copy = Session.load(work / "out.pyisession")
    assert copy.sample_count == original.sample_count == record["samples"]
    assert copy.frame_records == original.frame_records


def test_render_a_session_file_by_its_path(served, work):
    directory, records = served
    record = records[0]
    path = directory / record["files"]["session"]
    # No report directory needed: the module entry point, the directory unset and missing.
    text = ok(cli("render", str(path), "-f", "text", cwd=work, entry="module"))
    assert "load_user" in text
    ok(cli("render", str(path), "-f", "html", cwd=work, entry="module"))
    assert (work / f"{record['name']}.html").is_file()


# --- merge and diff ---


def test_merge_sums_the_samples(served, work):
    directory, records = served
    v1 = [r for r in records if r["label"] == "v1"]
    result = cli(
        "merge", "--label", "v1", "-f", "session", "-o", "merged.pyisession", cwd=work, directory=directory
    )
    ok(result)
    merged = Session.load(work / "merged.pyisession")
    inputs = [Session.load(directory / r["files"]["session"]) for r in v1]
    assert merged.sample_count == sum(s.sample_count for s in inputs) == sum(r["samples"] for r in v1)
    # One record per distinct stack, holding the time of every sample of that stack.
    distinct = {tuple(stack) for s in inputs for stack, _ in s.frame_records}
    assert len(merged.frame_records) == len(distinct)
    assert sum(t for _, t in merged.frame_records) == pytest.approx(
        sum(t for s in inputs for _, t in s.frame_records)
    )
    assert merged.duration == pytest.approx(sum(s.duration for s in inputs))
    ok(
        cli(
            "merge",
            "--label",
            "v1",
            "-f",
            "session",
            "--keep-samples",
            "-o",
            "all.pyisession",
            cwd=work,
            directory=directory,
        )
    )
    every = Session.load(work / "all.pyisession")
    assert len(every.frame_records) == sum(len(s.frame_records) for s in inputs)
    assert every.sample_count == merged.sample_count
    assert f"merged {len(v1)} report(s), {merged.sample_count} samples" in result.stderr
    # The merged tree renders, and holds the work of every endpoint.
    html = ok(cli("merge", "--label", "v1", "-o", "-", cwd=work, directory=directory, entry="module"))
    assert "<html" in html.lower()
    text = ok(cli("merge", "--status", "2xx", "-f", "text", cwd=work, directory=directory))
    assert "render_page" in text and "spin" in text


def test_diff_puts_the_slowed_function_first(served, work):
    directory, _ = served
    result = json.loads(ok(cli("diff", "label=v1", "label=v2", "--json", cwd=work, directory=directory)))
    assert result["a"]["reports"] == result["b"]["reports"] == len(REQUESTS)
    first = result["changes"][0]
    assert first["function"] == "render_page"
    assert first["file"].endswith("release_app.py")
    # 50 ms more on each of the four /users requests, over ten requests: about 20 ms per report
    # (more on a busy machine, where the loop may end late).
    assert first["self_delta"] > 0.01
    assert first["total_delta"] >= first["self_delta"] * 0.9
    assert first["self_b"] > first["self_a"] > 0

    out = ok(
        cli(
            "diff",
            "label=v1",
            "label=v2",
            "--html",
            "diff.html",
            "--limit",
            "5",
            cwd=work,
            directory=directory,
        )
    )
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("function"))
    assert lines[header + 1].split()[0] == "render_page"
    assert lines[header + 1].split()[3].startswith("+")
    page = (work / "diff.html").read_text()
    assert '<td class="name">render_page</td>' in page
    assert "label=v1" in page and "label=v2" in page
    # Narrowed to one endpoint on both sides: the same function, a larger share per report.
    narrowed = json.loads(
        ok(
            cli(
                "diff",
                "label=v1",
                "label=v2",
                "--endpoint",
                "GET /users/{n}",
                "--json",
                cwd=work,
                directory=directory,
            )
        )
    )
    assert narrowed["a"]["reports"] == 4
    assert narrowed["changes"][0]["function"] == "render_page"
    assert narrowed["changes"][0]["self_delta"] > first["self_delta"]


# --- prune ---


def test_prune_keeps_the_newest(served, work, tmp_path):
    directory, records = served
    copy = copy_reports(directory, tmp_path / "copy")
    dry = ok(cli("prune", "--max-reports", "5", "--dry-run", cwd=work, directory=copy))
    assert dry.startswith(f"would remove {len(records) - 5} report(s)")
    assert len(metadata_records(copy)) == len(records)
    out = ok(cli("prune", "--max-reports", "5", cwd=work, directory=copy, entry="module"))
    assert out.startswith(f"removed {len(records) - 5} report(s)")
    kept = metadata_records(copy)
    assert [r["name"] for r in kept] == [r["name"] for r in records[-5:]]
    for record in kept:
        assert Session.load(copy / record["files"]["session"]).sample_count == record["samples"]
        assert "<html" in (copy / record["files"]["html"]).read_text().lower()
    names = {p.name for p in copy.iterdir() if p.is_file()}
    assert names == {f for r in kept for f in [r["name"] + ".meta.json", *r["files"].values()]}
    # The limit from the environment, and by size.
    ok(cli("prune", cwd=work, directory=copy, env={"GUNICORN_PYINSTRUMENT_MAX_REPORTS": "2"}))
    assert [r["name"] for r in metadata_records(copy)] == [r["name"] for r in records[-2:]]
    last_size = sum(os.path.getsize(p) for p in copy.glob(records[-1]["name"] + ".*"))
    ok(cli("prune", "--max-bytes", str(last_size), cwd=work, directory=copy))
    assert [r["name"] for r in metadata_records(copy)] == [records[-1]["name"]]


# --- errors ---


def test_missing_directory_and_empty_selection(served, work, tmp_path):
    directory, _ = served
    missing = tmp_path / "missing"
    for entry in ENTRY_POINTS:
        result = cli("list", cwd=work, directory=missing, entry=entry)
        assert result.returncode == 2
        assert result.stderr == f"gunicorn-pyinstrument: error: report directory {missing} does not exist\n"
    # The default directory, ./pyinstrument-reports, is not there either.
    result = cli("top", cwd=work)
    assert result.returncode == 2
    assert f"report directory {work / 'pyinstrument-reports'} does not exist" in result.stderr
    result = cli("list", "--label", "v3", cwd=work, directory=directory)
    assert (result.returncode, result.stdout) == (1, "")
    count = len(metadata_records(directory))
    assert result.stderr.splitlines() == [
        f"gunicorn-pyinstrument: no report matches the selection ({count} report(s) in {directory})"
    ]
    result = cli("diff", "label=v1", "label=v3", cwd=work, directory=directory)
    assert result.returncode == 1
    assert "no report matches 'label=v3'" in result.stderr
    result = cli("list", "--status", "600", cwd=work, directory=directory)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "argument --status" in result.stderr
    result = cli("prune", cwd=work, directory=directory)
    assert result.returncode == 2
    assert "GUNICORN_PYINSTRUMENT_MAX_REPORTS" in result.stderr


def test_corrupt_files_are_skipped_and_named(served, work, tmp_path):
    directory, records = served
    copy = copy_reports(directory, tmp_path / "copy")
    bad_record, bad_session = records[3], records[13]
    (copy / (bad_record["name"] + ".meta.json")).write_text('{"name": "' + bad_record["name"])
    (copy / bad_session["files"]["session"]).write_bytes(b"\x00garbage")

    result = cli("list", "--json", "--limit", "0", cwd=work, directory=copy)
    names = [i["name"] for i in json.loads(ok(result))]
    assert bad_record["name"] not in names
    assert len(names) == len(records) - 1
    assert result.stderr.splitlines() == [
        f"gunicorn-pyinstrument: warning: skipped {copy / (bad_record['name'] + '.meta.json')}: "
        "not valid JSON (Unterminated string starting at)"
    ]
    result = cli("merge", "-f", "session", "-o", "merged.pyisession", cwd=work, directory=copy)
    ok(result)
    assert f"skipped {bad_session['name']}: " in result.stderr
    assert f"skipped {copy / (bad_record['name'] + '.meta.json')}" in result.stderr
    readable = [r for r in records if r["name"] not in (bad_record["name"], bad_session["name"])]
    assert f"merged {len(readable)} report(s)" in result.stderr
    assert Session.load(work / "merged.pyisession").sample_count == sum(r["samples"] for r in readable)
    result = cli("diff", "label=v1", "label=v2", "--json", cwd=work, directory=copy)
    diff = json.loads(ok(result))
    assert diff["a"]["reports"] + diff["b"]["reports"] == len(readable)
    assert f"skipped {bad_session['name']}" in result.stderr
    result = cli("render", bad_session["name"], "-f", "text", cwd=work, directory=copy)
    assert result.returncode == 2
    assert f"cannot read the session of {bad_session['name']}" in result.stderr
