"""Nothing lost unaccounted: a saturated sync worker that profiles every request, with a writer queue of
one, drops reports; the reports it keeps say how many were dropped before each, so every answered
request is a kept report or a counted drop, and ``list --json`` and ``top`` give the same totals."""

from __future__ import annotations

import io
import json
import re

from support import CONFIG_FILE, get_many, metadata_records, profiling_env

from gunicorn_pyinstrument import cli

APP = "tests.apps.reliability_app:app"
#: Short requests with deep stacks, sampled every 0.1 ms: sessions about as slow to write as the
#: requests are to serve, so the writer falls behind now and then (how often depends on the machine).
TARGET = "/deep/{i}?depth=50&s=0.001"
BATCH = 60
MAX_BATCHES = 8


def cli_output(*argv: str, empty: bool = False) -> str:
    out = io.StringIO()
    assert cli.main(list(argv), out=out) == (1 if empty else 0)
    return out.getvalue()


def test_every_answered_request_is_kept_or_counted(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session", SAMPLE_RATE="1", QUEUE_SIZE="1", INTERVAL="0.0001")
    server = gunicorn("-c", CONFIG_FILE, "-w", "1", APP, env=env)
    sent = 0
    for _ in range(MAX_BATCHES):  # until the worker says it dropped one (at once, then once a minute)
        idents = range(sent, sent + BATCH)
        replies = get_many((server.url + TARGET.format(i=i) for i in idents), concurrency=4)
        assert replies == [(200, f"deep {i}\n".encode()) for i in idents]
        sent += BATCH
        if "writer queue full" in server.log:
            break
    assert server.stop() == 0

    records = metadata_records(report_dir)
    kept = [r for r in records if r["kind"] == "request"]
    queue_full = sum(r["dropped"]["queue_full"] for r in records)
    assert sum(r["dropped"]["spool_full"] for r in records) == 0
    assert queue_full > 0, f"nothing dropped in {sent} requests: {server.log}"
    assert len(kept) + queue_full == sent
    summary = re.search(r"(\d+) reports written, (\d+) dropped \(queue full\)", server.log)
    assert summary is not None and tuple(map(int, summary.groups())) == (len(kept), queue_full), server.log

    directory = str(report_dir)
    listed = json.loads(cli_output("--dir", directory, "list", "--json", "--limit", "0"))
    # The reports still queued at exit were written after every drop: no record of drops is left.
    at_exit = json.loads(cli_output("--dir", directory, "list", "--json", "--kind", "dropped", empty=True))
    assert len(listed) == len(kept) and at_exit == []
    assert sum(r["dropped_queue_full"] for r in listed) == queue_full
    worker = f"{kept[0]['pid']}-{kept[0]['worker']['instance']}"
    top = cli_output("--dir", directory, "top").splitlines()
    assert f"dropped: {queue_full} (queue full), 0 (spool full), by 1 worker" in top
    assert top[-2].split() == [worker, kept[0]["hostname"], str(queue_full), "0"]
