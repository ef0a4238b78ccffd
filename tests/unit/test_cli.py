"""The command line, in process: ``cli.main([...], out=...)`` on report directories written by the
project's Writer, as a worker writes them. Errors are one line on stderr, with exit status 2 for
bad usage and 1 for an empty selection."""

from __future__ import annotations

import io
import json
import logging
import os
import pstats
import time
from pathlib import Path

import pytest
from pyinstrument import Profiler
from pyinstrument.session import Session

from gunicorn_pyinstrument import cli
from gunicorn_pyinstrument.directory import METADATA_SUFFIX
from gunicorn_pyinstrument.logs import ThrottledLog
from gunicorn_pyinstrument.report import Report, RequestFacts, Sampling, WorkerIdentity
from gunicorn_pyinstrument.worker.writer import Writer

T0 = 1_764_000_000.0
PROG = "gunicorn-pyinstrument"


def slow_function(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        for i in range(500):  # in its own code, not in a builtin
            n += i * i
    return n


def fast_function(seconds: float) -> int:
    return slow_function(seconds)


@pytest.fixture(scope="module")
def sessions() -> dict[str, Session]:
    """Real profiles: one mostly in slow_function, one mostly in fast_function."""
    result = {}
    for name, func, seconds in (("slow", slow_function, 0.04), ("fast", fast_function, 0.01)):
        profiler = Profiler(interval=0.0005)
        profiler.start()
        func(seconds)
        result[name] = profiler.stop()
    return result


_sequence = iter(range(1, 1_000_000))


def write(
    directory: Path,
    session: Session,
    *,
    path: str = "/users/1",
    status: int = 200,
    start: float = T0,
    duration: float = 0.05,
    label: str | None = None,
    method: str = "GET",
    sampling: Sampling | None = None,
) -> str:
    worker = WorkerIdentity(pid=77, age=1, worker_class="SyncWorker", hostname="web-1", instance="abcdef")
    facts = RequestFacts(method, path, status, start, duration, "sample")
    report = Report(
        Report.make_name(facts, worker, next(_sequence)),
        facts,
        worker,
        label,
        ("session",),
        session.sample_count,
        0.0005,
        sampling or Sampling(rate=session.sample_count / duration),
    )
    Writer(str(directory), 0o600, 4, ThrottledLog(logging.getLogger("test"))).write(report, session)
    return report.name


@pytest.fixture
def reports(tmp_path, sessions) -> tuple[Path, list[str]]:
    """Six reports: v1 (fast) and v2 (slow) on two endpoints, one 500; v2 with the sampler's cost."""
    directory = tmp_path / "reports"

    def cost(share: float) -> Sampling:
        return Sampling(rate=95.0, cpu=share / 10, share=share)

    names = [
        write(directory, sessions["fast"], path="/users/1", start=T0, duration=0.010, label="v1"),
        write(directory, sessions["fast"], path="/users/22", start=T0 + 1, duration=0.020, label="v1"),
        write(directory, sessions["fast"], path="/orders", start=T0 + 2, duration=0.030, label="v1"),
        write(
            directory,
            sessions["slow"],
            path="/users/333",
            start=T0 + 3,
            duration=0.040,
            label="v2",
            sampling=cost(0.004),
        ),
        write(
            directory,
            sessions["slow"],
            path="/orders",
            start=T0 + 4,
            duration=0.050,
            label="v2",
            status=500,
            sampling=cost(0.02),
        ),
        write(
            directory,
            sessions["slow"],
            path="/users/4",
            start=T0 + 5,
            duration=0.060,
            label="v2",
            sampling=cost(0.008),
        ),
    ]
    return directory, names


@pytest.fixture(autouse=True)
def no_settings(monkeypatch):
    for name in list(os.environ):
        if name.startswith("GUNICORN_PYINSTRUMENT"):
            monkeypatch.delenv(name)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out=out), out.getvalue()


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


# --- usage errors ---


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["list", "--status", "6xx"], "argument --status: not a status code or class like 5xx: '6xx'"),
        (["top", "--status", "2000"], "argument --status: not a status code"),
        (["list", "--since", "yesterday"], "argument --since: not a time: 'yesterday'"),
        (["merge", "--until", "2026-13-01"], "argument --until: not a time: '2026-13-01'"),
        (["list", "--path", "(unclosed"], "argument --path: bad regular expression '(unclosed'"),
        (["list", "--min-duration", "fast"], "argument --min-duration: not a duration: 'fast'"),
        (["list", "--kind", "thread"], "argument --kind: not a kind: 'thread'"),
        (["prune", "--max-bytes", "12XB"], "argument --max-bytes: not a size: '12XB'"),
        (["prune", "--max-reports", "-3"], "argument --max-reports: negative: '-3'"),
        (["list", "--limit", "ten"], "argument --limit: not a whole number: 'ten'"),
        (["list", "--sort", "colour"], "argument --sort: invalid choice: 'colour'"),
        (["render", "x", "-f", "pdf"], "argument -f/--format: invalid choice: 'pdf'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        run(*argv)
    assert exit_info.value.code == 2
    line = one_line_error(capsys)
    assert line.startswith(PROG)
    assert ": error: " in line
    assert expected in line


def test_bad_diff_side_exits_2(capsys, reports):
    directory, _ = reports
    assert run("--dir", str(directory), "diff", "label=v1", "colour=red")[0] == 2
    line = one_line_error(capsys)
    assert line.startswith(f"{PROG}: error: bad selection 'colour=red': expected KEY=VALUE with KEY one of")
    assert run("--dir", str(directory), "diff", "status=7xx", "label=v2")[0] == 2
    assert "not a status code or class like 5xx: '7xx'" in one_line_error(capsys)


def test_missing_directory_exits_2(capsys, tmp_path):
    missing = tmp_path / "nowhere"
    for argv in (["list"], ["top"], ["merge"], ["prune", "--max-reports", "1"], ["render", "x"]):
        assert run("--dir", str(missing), *argv)[0] == 2
        assert one_line_error(capsys) == f"{PROG}: error: report directory {missing} does not exist"
    assert not missing.exists()


def test_directory_from_the_environment_and_after_the_command(capsys, monkeypatch, reports):
    directory, names = reports
    monkeypatch.setenv("GUNICORN_PYINSTRUMENT_DIR", str(directory))
    status, out = run("list", "--json")
    assert status == 0
    assert [r["name"] for r in json.loads(out)] == names[::-1]
    # --dir wins over the variable, before or after the command.
    other = directory.parent / "other"
    other.mkdir()
    assert run("list", "--dir", str(other))[0] == 1
    assert run("--dir", str(other), "list")[0] == 1
    monkeypatch.setenv("GUNICORN_PYINSTRUMENT_DIR", "")
    assert run("list")[0] == 2
    assert "GUNICORN_PYINSTRUMENT_DIR=''" in capsys.readouterr().err.splitlines()[-1]


def test_empty_selection_exits_1(capsys, reports):
    directory, _ = reports
    assert run("--dir", str(directory), "list", "--label", "v9") == (1, "")
    assert one_line_error(capsys) == f"{PROG}: no report matches the selection (6 report(s) in {directory})"
    assert run("--dir", str(directory), "top", "--status", "404")[0] == 1
    assert "no request report matches the selection" in one_line_error(capsys)
    assert run("--dir", str(directory), "merge", "--path", "^/nothing")[0] == 1
    assert "no report matches the selection" in one_line_error(capsys)
    assert run("--dir", str(directory), "diff", "label=v1", "label=v9")[0] == 1
    assert one_line_error(capsys) == f"{PROG}: no report matches 'label=v9' in {directory}"
    assert run("--dir", str(directory), "render", "20990101T000000.000000Z_GET_x_1ms_1-a-1")[0] == 1
    assert "no report named '20990101T000000.000000Z_GET_x_1ms_1-a-1'" in one_line_error(capsys)
    empty = directory.parent / "empty"
    empty.mkdir()
    assert run("--dir", str(empty), "list")[0] == 1
    assert f"(0 report(s) in {empty})" in one_line_error(capsys)


def test_prune_without_a_limit_names_the_variables(capsys, reports):
    directory, names = reports
    assert run("--dir", str(directory), "prune")[0] == 2
    line = one_line_error(capsys)
    assert line.startswith(f"{PROG}: error: no retention limit")
    assert "--max-reports" in line and "--max-bytes" in line
    assert "GUNICORN_PYINSTRUMENT_MAX_REPORTS" in line and "GUNICORN_PYINSTRUMENT_MAX_BYTES" in line
    assert len(list(directory.glob("*" + METADATA_SUFFIX))) == len(names)


def test_prune_with_a_bad_variable_exits_2(capsys, monkeypatch, reports):
    directory, _ = reports
    monkeypatch.setenv("GUNICORN_PYINSTRUMENT_MAX_REPORTS", "many")
    assert run("--dir", str(directory), "prune")[0] == 2
    line = one_line_error(capsys)
    assert "GUNICORN_PYINSTRUMENT_MAX_REPORTS='many' is not valid" in line


# --- corrupt reports ---


def test_corrupt_record_is_warned_and_skipped(capsys, reports):
    directory, names = reports
    bad = directory / (names[2] + METADATA_SUFFIX)
    bad.write_text('{"name": "trunc')
    status, out = run("--dir", str(directory), "list", "--json")
    assert status == 0
    assert [r["name"] for r in json.loads(out)] == [n for n in names if n != names[2]][::-1]
    line = one_line_error(capsys)
    assert line.startswith(f"{PROG}: warning: skipped {bad}: not valid JSON")
    assert run("--dir", str(directory), "top")[0] == 0
    assert f"skipped {bad}" in one_line_error(capsys)


def test_corrupt_session_is_skipped_by_merge_and_diff(capsys, reports, tmp_path):
    directory, names = reports
    (directory / (names[3] + ".pyisession")).write_text("{ not json")
    output = tmp_path / "merged.pyisession"
    status, _ = run("--dir", str(directory), "merge", "--label", "v2", "-f", "session", "-o", str(output))
    assert status == 0
    err = capsys.readouterr().err
    assert f"warning: skipped {names[3]}: " in err
    assert "merged 2 report(s)" in err
    merged = Session.load(output)
    parts = [Session.load(directory / (n + ".pyisession")) for n in names[4:]]
    assert merged.sample_count == sum(p.sample_count for p in parts)
    status, out = run("--dir", str(directory), "diff", "label=v1", "label=v2", "--json")
    assert status == 0
    assert json.loads(out)["b"]["reports"] == 2
    assert f"skipped {names[3]}" in capsys.readouterr().err
    # When nothing of a side can be read: exit 1, said so.
    for name in names[4:]:
        (directory / (name + ".pyisession")).unlink()
    assert run("--dir", str(directory), "diff", "label=v1", "label=v2")[0] == 1
    assert "none of the reports of 'label=v2' could be read" in capsys.readouterr().err


# --- list and top ---


def test_list_json_matches_the_records(reports):
    directory, names = reports
    status, out = run("--dir", str(directory), "list", "--json", "--ascending")
    assert status == 0
    listed = json.loads(out)
    assert [r["name"] for r in listed] == names
    for item in listed:
        record = json.loads((directory / (item["name"] + METADATA_SUFFIX)).read_text())
        for key in (
            "start",
            "end",
            "method",
            "path",
            "status",
            "duration",
            "label",
            "pid",
            "samples",
            "interval",
            "rate",
            "sampler_cpu",
            "sampler_share",
            "over_budget",
            "files",
        ):
            assert item[key] == record[key], key
        assert item["instance"] == record["worker"]["instance"]
    assert [r["endpoint"] for r in listed] == [
        "GET /users/{n}",
        "GET /users/{n}",
        "GET /orders",
        "GET /users/{n}",
        "GET /orders",
        "GET /users/{n}",
    ]


def test_list_filters_sort_and_limit(reports):
    directory, names = reports

    def listed(*argv: str) -> list[str]:
        status, out = run("--dir", str(directory), "list", "--json", *argv)
        assert status == (0 if json.loads(out) else 1)
        return [r["name"] for r in json.loads(out)]

    assert listed() == names[::-1]
    assert listed("--label", "v1") == names[2::-1]
    assert listed("--status", "5xx") == [names[4]]
    assert listed("--path", r"^/users/\d{2,}$") == [names[3], names[1]]
    assert listed("--endpoint", "GET /orders") == [names[4], names[2]]
    assert listed("--min-duration", "45ms") == [names[5], names[4]]
    assert listed("--since", "2025-11-24T16:00:02Z", "--until", "2025-11-24T16:00:03") == [names[3], names[2]]
    assert listed("--worker", "77-abcdef", "--method", "get", "--kind", "request") == names[::-1]
    assert listed("--worker", "78") == []
    assert listed("--sort", "duration", "--limit", "2") == [names[5], names[4]]
    assert listed("--sort", "path", "--ascending", "--limit", "0")[:2] == [names[2], names[4]]


def test_list_table(reports):
    directory, names = reports
    status, out = run("--dir", str(directory), "list", "--label", "v2")
    assert status == 0
    header, *rows = out.splitlines()
    assert header.split() == ["time", "(UTC)", "method", "path", "status", "ms", "label", "worker", "name"]
    assert [row.split()[-1] for row in rows] == names[:2:-1]
    assert rows[1].split()[2:8] == ["GET", "/orders", "500", "50.0", "v2", "77-abcdef"]
    assert rows[0].startswith("2025-11-24 16:00:05.000")


def test_top_figures(reports):
    directory, _ = reports
    status, out = run("--dir", str(directory), "top", "--json")
    assert status == 0
    stats = {s["endpoint"]: s for s in json.loads(out)}
    users = [0.010, 0.020, 0.040, 0.060]
    assert stats["GET /users/{n}"] == {
        "endpoint": "GET /users/{n}",
        "count": 4,
        "p50": 0.020,
        "p95": 0.060,
        "max": 0.060,
        "total": pytest.approx(sum(users)),
        "sampler_share": 0.004,  # the median (nearest rank) of those that record one: 0.4 % and 0.8 %
    }
    assert stats["GET /orders"]["count"] == 2
    assert (stats["GET /orders"]["p50"], stats["GET /orders"]["max"]) == (0.030, 0.050)
    status, out = run("--dir", str(directory), "top", "--sort", "p95", "--limit", "1")
    header, row = out.splitlines()
    assert header.split() == [
        "endpoint",
        "count",
        "p50",
        "ms",
        "p95",
        "ms",
        "max",
        "ms",
        "total",
        "s",
        "sampler",
        "%",
    ]
    assert row.split() == ["GET", "/users/{n}", "4", "20.0", "60.0", "60.0", "0.130", "0.40"]
    status, out = run("--dir", str(directory), "top", "--label", "v1")
    assert [row.split()[-1] for row in out.splitlines()[1:]] == ["-", "-"]  # nothing recorded


def test_records_without_the_sampling_fields_read_as_null(reports):
    """Records written before the sampling was recorded: listed, with nulls."""
    directory, names = reports
    path = directory / (names[0] + METADATA_SUFFIX)
    record = json.loads(path.read_text())
    for key in ("interval", "rate", "sampler_cpu", "sampler_share", "over_budget"):
        del record[key]
    path.write_text(json.dumps(record))
    status, out = run("--dir", str(directory), "list", "--json", "--ascending", "--limit", "1")
    assert status == 0
    item = json.loads(out)[0]
    assert item["name"] == names[0]
    assert [item[k] for k in ("interval", "rate", "sampler_cpu", "sampler_share", "over_budget")] == [
        None
    ] * 5


# --- render ---


def test_render_every_format_from_a_report_name(reports, tmp_path, sessions):
    directory, names = reports
    name = names[3]
    for fmt, suffix in (("html", ".html"), ("speedscope", ".speedscope.json"), ("pstats", ".pstats")):
        output = tmp_path / f"out{suffix}"
        assert run("--dir", str(directory), "render", name, "-f", fmt, "-o", str(output)) == (0, "")
        assert output.stat().st_size > 0
    assert "<html" in (tmp_path / "out.html").read_text().lower()
    speedscope = json.loads((tmp_path / "out.speedscope.json").read_text())
    assert "slow_function" in {f["name"] for f in speedscope["shared"]["frames"]}
    stats = pstats.Stats(str(tmp_path / "out.pstats"))
    assert "slow_function" in {func for (_, _, func) in stats.stats}  # type: ignore[attr-defined]
    status, text = run("--dir", str(directory), "render", name, "-f", "text")
    assert status == 0 and "slow_function" in text
    output = tmp_path / "copy.pyisession"
    assert run("--dir", str(directory), "render", name, "-f", "session", "-o", str(output))[0] == 0
    assert Session.load(output).to_json() == Session.load(directory / (name + ".pyisession")).to_json()


def test_render_from_a_file_of_the_report_or_a_session_path(reports, tmp_path, monkeypatch):
    directory, names = reports
    name = names[0]
    elsewhere = tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # The session file itself, from anywhere, with no report directory at all.
    session_path = tmp_path / "loose.pyisession"
    session_path.write_bytes((directory / (name + ".pyisession")).read_bytes())
    status, text = run("--dir", str(tmp_path / "none"), "render", str(session_path), "-f", "text")
    assert status == 0 and "fast_function" in text
    # Default output: NAME.SUFFIX here.
    assert run("--dir", str(tmp_path / "none"), "render", str(session_path))[0] == 0
    assert (elsewhere / "loose.html").read_text().lower().count("<html") == 1
    # The report's metadata record, or its name with a suffix: the report.
    record = directory / (name + METADATA_SUFFIX)
    status, text = run("render", str(record), "-f", "text")
    assert status == 0 and "fast_function" in text
    status, text = run("--dir", str(directory), "render", name + ".html", "-f", "text")
    assert status == 0 and "fast_function" in text


def test_render_of_a_file_that_is_not_a_session(capsys, tmp_path):
    bad = tmp_path / "notes.pyisession"
    bad.write_text("hello")
    assert run("--dir", str(tmp_path), "render", str(bad))[0] == 2
    assert one_line_error(capsys).startswith(f"{PROG}: error: cannot read {bad} as a pyinstrument session")


def test_render_of_a_report_whose_session_is_broken(capsys, reports):
    directory, names = reports
    (directory / (names[1] + ".pyisession")).write_text("[]")
    assert run("--dir", str(directory), "render", names[1], "-f", "text")[0] == 2
    assert one_line_error(capsys).startswith(f"{PROG}: error: cannot read the session of {names[1]}")


# --- merge, diff, prune ---


def test_merge_sums_the_samples(capsys, reports, tmp_path):
    directory, names = reports
    output = tmp_path / "merged.pyisession"
    assert run("--dir", str(directory), "merge", "-f", "session", "-o", str(output), "--title", "all")[0] == 0
    merged = Session.load(output)
    parts = [Session.load(directory / (n + ".pyisession")) for n in names]
    assert merged.sample_count == sum(p.sample_count for p in parts)
    # Folded: one record per distinct stack, the same time in all.
    assert len(merged.frame_records) == len({tuple(st) for p in parts for st, _ in p.frame_records})
    assert sum(t for _, t in merged.frame_records) == pytest.approx(
        sum(t for p in parts for _, t in p.frame_records)
    )
    kept = tmp_path / "kept.pyisession"
    assert run("--dir", str(directory), "merge", "-f", "session", "--keep-samples", "-o", str(kept))[0] == 0
    assert len(Session.load(kept).frame_records) == sum(len(p.frame_records) for p in parts)
    assert merged.target_description == "all"
    assert f"merged 6 report(s), {merged.sample_count} samples" in capsys.readouterr().err


def test_diff_finds_the_slower_function(capsys, reports, tmp_path):
    directory, _ = reports
    page = tmp_path / "diff.html"
    status, out = run("--dir", str(directory), "diff", "label=v1", "label=v2", "--json", "--html", str(page))
    assert status == 0
    result = json.loads(out)
    assert (result["a"]["reports"], result["b"]["reports"]) == (3, 3)
    top_change = result["changes"][0]
    assert top_change["function"] == "slow_function"
    assert top_change["self_delta"] > 0.02
    assert f"wrote {page}" in capsys.readouterr().err
    assert "slow_function" in page.read_text()
    status, out = run("--dir", str(directory), "diff", "label=v1", "label=v2", "--limit", "1")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("label=v1: 3 report(s)")
    assert lines[3].startswith("function")
    assert lines[4].startswith("slow_function")
    assert lines[-1].startswith("... ")
    # A side may be a report name, and common options narrow both sides.
    status, out = run("--dir", str(directory), "diff", "label=v1", "label=v2", "--path", "^/orders", "--json")
    assert json.loads(out)["a"]["reports"] == json.loads(out)["b"]["reports"] == 1


def test_prune_dry_run_then_prune(reports):
    directory, names = reports
    status, out = run("--dir", str(directory), "prune", "--max-reports", "4", "--dry-run")
    assert status == 0
    first, *listed = out.splitlines()
    freed = sum(p.stat().st_size for n in names[:2] for p in directory.glob(n + "*"))
    assert first == f"would remove 2 report(s) ({freed} bytes) and 0 orphaned file(s)"
    assert listed == [f"  {names[0]}", f"  {names[1]}"]
    assert len(list(directory.glob("*" + METADATA_SUFFIX))) == 6
    status, out = run("--dir", str(directory), "prune", "--max-reports", "4")
    assert status == 0
    assert out.startswith("removed 2 report(s)")
    assert sorted(p.name for p in directory.glob("*" + METADATA_SUFFIX)) == [
        n + METADATA_SUFFIX for n in names[2:]
    ]
    assert not list(directory.glob(names[0] + "*"))


def test_prune_limit_from_the_environment(monkeypatch, reports):
    directory, names = reports
    monkeypatch.setenv("GUNICORN_PYINSTRUMENT_MAX_REPORTS", "2")
    assert run("--dir", str(directory), "prune")[0] == 0
    assert sorted(p.name for p in directory.glob("*" + METADATA_SUFFIX)) == [
        n + METADATA_SUFFIX for n in names[4:]
    ]
    monkeypatch.delenv("GUNICORN_PYINSTRUMENT_MAX_REPORTS")
    size = sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) - 1
    monkeypatch.setenv("GUNICORN_PYINSTRUMENT_MAX_BYTES", str(size))
    status, out = run("--dir", str(directory), "prune")
    assert status == 0 and out.startswith("removed 1 report(s)")
    assert [p.name for p in directory.glob("*" + METADATA_SUFFIX)] == [names[5] + METADATA_SUFFIX]


# --- object storage ---


def test_prune_on_a_bucket_recommends_lifecycle_rules(capsys):
    code, _ = run("prune", "--dir", "s3://fleet-reports/prod", "--max-reports", "5")
    assert code == 2
    err = capsys.readouterr().err
    assert "lifecycle rule" in err and err.count("\n") == 1


def test_a_bad_bucket_url_is_one_line(capsys):
    code, _ = run("list", "--dir", "s3://x")
    assert code == 2
    assert "bad bucket name" in capsys.readouterr().err


def test_upload_needs_a_destination(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GUNICORN_PYINSTRUMENT_UPLOAD", raising=False)
    code, _ = run("upload", "--dir", str(tmp_path))
    assert code == 2
    assert "--to s3://BUCKET/PREFIX" in capsys.readouterr().err
