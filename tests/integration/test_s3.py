"""Reports shipped to object storage, against a real S3 protocol server on 127.0.0.1.

moto's server mode (``python -m moto.server``) is started by each test on a free port, and stopped
(by pid) and started again on the same port to play a store that goes down and comes back; it
keeps everything in memory, so the bucket is created again after a restart. Real gunicorn
servers upload to it; the command line reads it back.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

boto3 = pytest.importorskip("boto3", reason="boto3 is needed: pip install -e '.[test]'")
pytest.importorskip("moto.server", reason="moto's server is needed: pip install -e '.[test]'")

from support import (  # noqa: E402
    CONFIG_MODULE,
    FLASK_APP,
    REPO_ROOT,
    function_names,
    get,
    get_many,
    metadata_records,
    profiling_env,
)

from gunicorn_pyinstrument import cli  # noqa: E402
from gunicorn_pyinstrument.stores.s3 import host_part  # noqa: E402

BUCKET = "fleet-reports"
STAMP = re.compile(r"(\d{4})(\d{2})(\d{2})T\d{6}\.\d{6}Z_")
NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z_[A-Z]+_.+_\d+ms_(\d+)-([0-9a-f]{6})-\d+")
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    # Never a real account's settings or credentials.
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Moto:
    """moto's S3 server on 127.0.0.1:port; ``requests()`` reads its request log."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 -- the child writes to it until stopped
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text(errors="replace")
            with contextlib.suppress(OSError):
                status, _ = get(self.url + "/moto-api/", timeout=2)
                if status < 500:
                    break
            time.sleep(0.05)
        else:
            raise AssertionError(f"moto did not start:\n{self.log_path.read_text(errors='replace')}")
        self.client().create_bucket(Bucket=BUCKET)  # its memory starts empty every time

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def client(self) -> Any:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        return session.client("s3", endpoint_url=self.url)

    def objects(self, prefix: str = "") -> dict[str, int]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return {o["Key"]: o["Size"] for page in pages for o in page.get("Contents") or ()}

    def records(self, prefix: str = "") -> list[str]:
        return sorted(k for k in self.objects(prefix) if k.endswith(".meta.json"))

    def requests(self) -> list[tuple[str, str]]:
        """(method, target) of every request served so far, in order."""
        text = self.log_path.read_text(errors="replace")
        return re.findall(r'"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/1\.[01]"', text)


@pytest.fixture
def moto(tmp_path: Path) -> Iterator[Moto]:
    server = Moto(free_port(), tmp_path / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def upload_env(directory: Path, moto: Moto, prefix: str, **settings: str) -> dict[str, str]:
    env = profiling_env(directory, UPLOAD=f"s3://{BUCKET}/{prefix}", S3_ENDPOINT_URL=moto.url, **settings)
    return env | AWS_ENV


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


def local_reports(directory: Path) -> list[str]:
    """Report files waiting in the local directory (hidden files and the spool left out)."""
    return sorted(p.name for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


@pytest.mark.parametrize(
    ("settings", "variable", "words"),
    [
        ({"UPLOAD": "s3://Fleet_Reports/x"}, "UPLOAD", "is not valid (bad bucket name"),
        ({"UPLOAD": f"s3://{BUCKET}", "MAX_BYTES": "1GB"}, "MAX_BYTES", "cannot be used with"),
        (
            {"UPLOAD": f"s3://{BUCKET}/p", "BLOCK_BOTO3": "1"},
            "UPLOAD",
            "pip install 'gunicorn-pyinstrument[s3]'",
        ),
    ],
    ids=["bad-url", "with-retention", "no-boto3"],
)
def test_start_up_stops_with_one_line(gunicorn, tmp_path, settings, variable, words):
    env = profiling_env(tmp_path / "reports", **{k: v for k, v in settings.items() if k != "BLOCK_BOTO3"})
    if "BLOCK_BOTO3" in settings:
        # A Python without boto3: every import of it fails, as where the extra is not installed.
        blocker = tmp_path / "blocker"
        blocker.mkdir()
        (blocker / "sitecustomize.py").write_text(
            "import sys\n"
            "class _NoBoto3:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'boto3':\n"
            "            raise ModuleNotFoundError(name)\n"
            "sys.meta_path.insert(0, _NoBoto3())\n"
        )
        env["PYTHONPATH"] = str(blocker)
    result = gunicorn.run("-c", CONFIG_MODULE, "-w", "1", FLASK_APP, env=env, timeout=20)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"gunicorn-pyinstrument: error: GUNICORN_PYINSTRUMENT_{variable}="), lines[0]
    assert words in lines[0]


def test_reports_are_uploaded_whole_keyed_by_day_host_and_worker(gunicorn, moto, report_dir, tmp_path):
    env = upload_env(report_dir, moto, "prod/web", FORMATS="session,html", LABEL="v1")
    server = gunicorn("-c", CONFIG_MODULE, "-w", "2", FLASK_APP, env=env)
    results = get_many([f"{server.url}/alpha?s=0.02"] * 6, concurrency=3)
    assert [status for status, _ in results] == [200] * 6
    wait_until(lambda: len(moto.records()) == 6, 30, "6 reports in the bucket")
    wait_until(lambda: not local_reports(report_dir), 10, "the local directory to empty")
    workers = set(server.worker_pids())
    server.stop()

    objects = moto.objects()
    host = host_part(socket.gethostname())
    puts = [target for method, target in moto.requests() if method == "PUT"]
    for record_key in moto.records():
        prefix, day, key_host, filename = record_key.rsplit("/", 3)
        name = filename.removesuffix(".meta.json")
        assert (prefix, key_host) == ("prod/web", host)
        assert day == "-".join(STAMP.match(name).groups())  # type: ignore[union-attr]
        pid, _instance = NAME.fullmatch(name).groups()  # type: ignore[union-attr]
        assert int(pid) in workers
        record = json.loads(moto.client().get_object(Bucket=BUCKET, Key=record_key)["Body"].read())
        assert record["name"] == name and record["label"] == "v1"
        assert set(record["files"]) == {"session", "html"}
        file_keys = [f"{prefix}/{day}/{key_host}/{f}" for f in record["files"].values()]
        assert all(k in objects for k in file_keys)
        # The record is uploaded after every file of its report.
        record_put = puts.index(f"/{BUCKET}/{record_key}")
        assert all(puts.index(f"/{BUCKET}/{k}") < record_put for k in file_keys)
        # The session is pyinstrument's own, whole.
        session_file = tmp_path / record["files"]["session"]
        session_key = f"{prefix}/{day}/{key_host}/{record['files']['session']}"
        session_file.write_bytes(moto.client().get_object(Bucket=BUCKET, Key=session_key)["Body"].read())
        from pyinstrument.session import Session

        assert "alpha_work" in function_names(Session.load(session_file))


def test_store_down_requests_succeed_reports_wait_and_arrive_when_it_is_back(gunicorn, moto, report_dir):
    env = upload_env(report_dir, moto, "prod", FORMATS="session")
    server = gunicorn("-c", CONFIG_MODULE, "-w", "2", FLASK_APP, env=env)
    assert [s for s, _ in get_many([server.url + "/"] * 3)] == [200] * 3
    wait_until(lambda: len(moto.records()) == 3, 20, "the first reports in the bucket")

    moto.stop()
    timings = []
    for i in range(10):
        started = time.monotonic()
        status, _ = get(f"{server.url}/users/{i}", timeout=10)
        timings.append(time.monotonic() - started)
        assert status == 200
    assert max(timings) < 2.0, timings  # no request waits for the store
    wait_until(lambda: len(metadata_records(report_dir)) == 10, 10, "10 reports waiting locally")
    wait_until(lambda: "uploader: cannot upload" in server.log, 10, "the uploader to say the store is down")
    assert server.running()

    moto.start()  # same port, empty memory: the bucket is new
    wait_until(lambda: len(moto.records()) == 10, 40, "the spooled reports in the bucket")
    wait_until(lambda: not local_reports(report_dir), 10, "the local spool to empty")
    assert "uploading to s3://fleet-reports/prod again" in server.log
    assert server.stop() == 0


def test_spool_bound_drops_new_reports_and_keeps_the_waiting_ones(gunicorn, moto, report_dir):
    moto.stop()  # down from the start
    env = upload_env(report_dir, moto, "prod", FORMATS="session", SPOOL_MAX_BYTES="40KB")
    server = gunicorn("-c", CONFIG_MODULE, "-w", "2", FLASK_APP, env=env)
    mark = report_dir / ".spool-full"
    sent = 0
    for _ in range(200):
        assert get(f"{server.url}/alpha?s=0.005")[0] == 200
        sent += 1
        if mark.exists():
            break
        time.sleep(0.02)
    assert mark.exists(), "the spool never reached its bound"
    time.sleep(1.5)  # every writer thread looks again within a second
    kept = local_reports(report_dir)
    assert [s for s, _ in get_many([f"{server.url}/alpha?s=0.005"] * 20, concurrency=2)] == [200] * 20
    time.sleep(0.5)
    assert local_reports(report_dir) == kept, "reports were written over the bound"
    assert "over GUNICORN_PYINSTRUMENT_SPOOL_MAX_BYTES" in server.log
    assert "workers drop new reports" in server.log

    waiting = len(metadata_records(report_dir))
    moto.start()
    wait_until(lambda: len(moto.records()) == waiting, 40, "the waiting reports in the bucket")
    wait_until(lambda: not mark.exists(), 10, "the spool to be under its bound again")
    time.sleep(1.1)
    assert get(f"{server.url}/beta?s=0.005")[0] == 200
    wait_until(lambda: len(moto.records()) == waiting + 1, 20, "a new report after the spool emptied")
    assert server.stop() == 0
    # Every request is a report or a counted drop: in the report its worker wrote next, or at its exit.
    bucket = moto.client()
    uploaded = [json.loads(bucket.get_object(Bucket=BUCKET, Key=k)["Body"].read()) for k in moto.records()]
    records = uploaded + metadata_records(report_dir)
    kept = [r for r in records if r["kind"] == "request"]
    assert len(kept) + sum(r["dropped"]["spool_full"] for r in records) == sent + 20 + 1


def run_cli(*argv: str) -> str:
    out = io.StringIO()
    assert cli.main(list(argv), out) == 0
    return out.getvalue()


def test_cli_reads_a_bucket_like_a_directory_and_downloads_once(
    gunicorn, moto, report_dir, tmp_path, monkeypatch
):
    for label, seconds in (("v1", "0.01"), ("v2", "0.03")):
        env = profiling_env(report_dir, LABEL=label, FORMATS="session")
        server = gunicorn("-c", CONFIG_MODULE, "-w", "1", FLASK_APP, env=env)
        urls = [f"{server.url}/alpha?s={seconds}", f"{server.url}/users/{label[1]}", server.url + "/"] * 2
        assert [s for s, _ in get_many(urls, concurrency=2)] == [200] * 6
        server.stop()
    assert len(metadata_records(report_dir)) == 12

    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GUNICORN_PYINSTRUMENT_S3_ENDPOINT_URL", moto.url)
    url = f"s3://{BUCKET}/fleet"
    # The upload command, as after a container stopped with reports still in its directory.
    command = [sys.executable, "-m", "gunicorn_pyinstrument", "upload", "--keep", "--dir", str(report_dir)]
    done = subprocess.run([*command, "--to", url], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "uploaded 12 report(s)" in done.stdout
    assert len(moto.records("fleet/")) == 12

    cache = str(tmp_path / "cache")
    commands = [
        ["list", "--json", "--limit", "0"],
        ["top", "--json"],
        ["top", "--label", "v2", "--since", "1h"],
        ["merge", "-f", "text", "-o", "-", "--path", "^/alpha"],
        ["diff", "label=v1", "label=v2", "--json", "--limit", "0"],
    ]
    for argv in commands:
        local = run_cli("--dir", str(report_dir), *argv)
        remote = run_cli("--dir", url, "--cache", cache, *argv)
        assert remote == local, argv

    # A second pass downloads nothing: only listings reach the store, and the cache is unchanged.
    before = len(moto.requests())
    files = sorted(os.listdir(cache))
    for argv in commands:
        run_cli("--dir", url, "--cache", cache, *argv)
    after = moto.requests()[before:]
    assert after and all("list-type=2" in target for _, target in after), after
    assert sorted(os.listdir(cache)) == files
