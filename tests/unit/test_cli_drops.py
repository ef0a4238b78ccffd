"""The dropped reports on the command line: ``list`` and ``top`` say how many the selected workers
dropped over the selected time (in all, and per worker in ``top``); ``list --json`` gives each
report's counts."""

from __future__ import annotations

import io
import json
import os

import pytest
from synthetic import T0, write_report

from gunicorn_pyinstrument import cli
from gunicorn_pyinstrument.report import Dropped

WEB1 = dict(pid=100, instance="aaaaaa", hostname="web-1")
WEB2 = dict(pid=200, instance="bbbbbb", hostname="web-2")


@pytest.fixture(autouse=True)
def no_settings(monkeypatch):
    for name in list(os.environ):
        if name.startswith("GUNICORN_PYINSTRUMENT"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    """web-1 dropped 3 (queue full) before its second report; web-2 dropped 4 (spool full) at exit."""
    root = tmp_path_factory.mktemp("dropped")
    write_report(root, start=T0, path="/users/1", **WEB1)
    write_report(root, start=T0 + 10, path="/users/2", dropped=Dropped(3, 0), **WEB1)
    write_report(root, start=T0 + 20, path="/orders", **WEB2)
    write_report(root, start=T0 + 30, dropped=Dropped(0, 4), drops_only=True, **WEB2)
    return root


def run(directory, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(["--dir", str(directory), *argv], out=out), out.getvalue()


def test_list_says_how_many_were_dropped(directory):
    status, out = run(directory, "list")
    assert status == 0
    *table, blank, last = out.splitlines()
    assert len(table) == 4 and blank == ""  # the header and the three reports: the record of drops is not one
    assert last == "dropped: 3 (queue full), 4 (spool full), by 2 workers"
    assert run(directory, "list", "--worker", "web-1")[1].splitlines()[-1] == (
        "dropped: 3 (queue full), 0 (spool full), by 1 worker"
    )
    # Before web-1's second report: nothing dropped yet, nothing said.
    assert "dropped" not in run(directory, "list", "--until", "2025-11-24T16:00:05Z")[1]


def test_list_json_gives_each_reports_counts(directory):
    status, out = run(directory, "list", "--json", "--ascending")
    assert status == 0
    counts = [(r["path"], r["dropped_queue_full"], r["dropped_spool_full"]) for r in json.loads(out)]
    assert counts == [("/users/1", 0, 0), ("/users/2", 3, 0), ("/orders", 0, 0)]
    status, out = run(directory, "list", "--json", "--kind", "dropped")
    [record] = json.loads(out)
    assert (record["kind"], record["files"], record["dropped_spool_full"], record["pid"]) == (
        "dropped",
        {},
        4,
        200,
    )


def test_top_gives_the_drops_per_worker(directory):
    status, out = run(directory, "top")
    assert status == 0
    lines = out.splitlines()
    at = lines.index("dropped: 3 (queue full), 4 (spool full), by 2 workers")
    assert lines[at - 1] == "" and lines[1].split()[:3] == ["GET", "/users/{n}", "2"]
    assert [line.split() for line in lines[at + 1 :]] == [
        ["worker", "host", "queue", "full", "spool", "full"],
        ["200-bbbbbb", "web-2", "0", "4"],
        ["100-aaaaaa", "web-1", "3", "0"],
        ["all", "3", "4"],
    ]
    status, out = run(directory, "top", "--json")
    assert [s["endpoint"] for s in json.loads(out)] == ["GET /users/{n}", "GET /orders"]  # as before


def test_an_empty_selection_still_says_what_was_dropped(directory, capsys):
    status, out = run(directory, "list", "--since", "2025-11-24T16:00:25Z")
    assert status == 1 and out == "dropped: 0 (queue full), 4 (spool full), by 1 worker\n"
    assert "no report matches the selection" in capsys.readouterr().err
