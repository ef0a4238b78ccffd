"""The uploader, against an in-memory store that can be switched off: files then the record, oldest
first, reports still to render left waiting, backoff while the store is down, broken records set
aside, and the spool bound's mark.

The same code against a real S3 protocol server is in tests/integration/test_s3.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from fakes import MemoryStore
from synthetic import T0, write_report

from gunicorn_pyinstrument.directory import FULL_MARK, JOB_SUFFIX, METADATA_SUFFIX, SPOOL_DIR
from gunicorn_pyinstrument.helper.upload import Uploader, pending_reports, spool_bytes
from gunicorn_pyinstrument.inputs import S3Location

DAY = "2025-11-24"
LOCATION = S3Location("fleet-reports", "prod/web")


def local_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


class Lines(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


# --- the uploader ---


def test_uploader_sends_files_then_the_record_and_empties_the_directory(tmp_path):
    store = MemoryStore()
    reports = [write_report(tmp_path, start=T0 + i, formats=("session",)) for i in range(3)]
    uploader = Uploader(str(tmp_path), store, LOCATION)
    assert uploader.step() == 3
    assert local_files(tmp_path) == []
    for report in reports:
        base = f"prod/web/{DAY}/web-1/{report.name}"
        record_key, session_key = base + METADATA_SUFFIX, base + ".pyisession"
        assert store.puts.index(session_key) < store.puts.index(record_key)
        assert json.loads(store.objects[record_key])["name"] == report.name
    # Oldest first.
    records = [k for k in store.puts if k.endswith(METADATA_SUFFIX)]
    assert records == sorted(records)


def test_reports_still_to_render_wait(tmp_path):
    store = MemoryStore()
    report = write_report(tmp_path, formats=("session", "html"))
    assert (tmp_path / SPOOL_DIR / (report.name + JOB_SUFFIX)).exists()
    assert Uploader(str(tmp_path), store, LOCATION).step() == 0
    assert store.puts == []


def test_keep_leaves_the_local_copies(tmp_path):
    write_report(tmp_path)
    before = local_files(tmp_path)
    Uploader(str(tmp_path), MemoryStore(), LOCATION, keep=True).upload_all()
    assert local_files(tmp_path) == before


def test_store_down_backs_off_logs_once_and_loses_nothing(tmp_path):
    store = MemoryStore()
    store.down = True
    log = Lines()
    uploader = Uploader(str(tmp_path), store, LOCATION, log=log)
    write_report(tmp_path)
    now = time.monotonic()
    assert uploader.step(now) == 0
    assert len(log) == 1 and "Connection refused" in log[0] and "1 report(s)" in log[0]
    # Within the backoff nothing is tried; later tries fail quietly (one line per minute).
    assert uploader.step(now + 0.5) == 0
    for i in range(1, 6):
        uploader.step(now + 10 * i)  # retried (the backoff is shorter), not logged
    assert len(log) == 1
    write_report(tmp_path, start=T0 + 1)
    assert len(pending_reports(str(tmp_path))) == 2
    store.down = False
    assert uploader.step(now + 10_000) == 2
    assert "again" in log[-1]
    assert local_files(tmp_path) == []


def test_a_broken_record_is_set_aside(tmp_path):
    (tmp_path / ("20251124T160000.000000Z_GET_x_1ms_1-aaaaaa-1" + METADATA_SUFFIX)).write_text("{not json")
    log = Lines()
    good = write_report(tmp_path)
    store = MemoryStore()
    Uploader(str(tmp_path), store, LOCATION, log=log).step()
    assert any(k.endswith(good.name + METADATA_SUFFIX) for k in store.puts)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".failed")]
    assert "renamed" in log[0]


def test_a_missing_file_does_not_stop_the_record(tmp_path):
    report = write_report(tmp_path)
    (tmp_path / report.filename("session")).unlink()
    store = MemoryStore()
    log = Lines()
    Uploader(str(tmp_path), store, LOCATION, log=log).step()
    assert [k.rsplit("/", 1)[1] for k in store.puts] == [report.metadata_name]
    assert "missing" in log[0]


def test_finish_gives_up_at_once_on_a_store_already_down(tmp_path):
    store = MemoryStore()
    store.down = True
    log = Lines()
    uploader = Uploader(str(tmp_path), store, LOCATION, log=log)
    write_report(tmp_path)
    uploader.step()
    started = time.monotonic()
    assert uploader.finish(5.0) is False
    assert time.monotonic() - started < 1.0
    assert "stay in" in log[-1]
    store.down = False
    assert uploader.finish(5.0) is True


# --- the spool bound ---


def test_spool_mark_is_set_over_the_bound_and_cleared_under_it(tmp_path):
    store = MemoryStore()
    store.down = True
    log = Lines()
    write_report(tmp_path)
    size = spool_bytes(str(tmp_path))
    uploader = Uploader(str(tmp_path), store, LOCATION, spool_max_bytes=size + 1, log=log)
    uploader.check_spool(0.0)
    assert not (tmp_path / FULL_MARK).exists()
    write_report(tmp_path, start=T0 + 1)
    uploader.check_spool(0.5)  # at most once a second
    assert not (tmp_path / FULL_MARK).exists()
    uploader.check_spool(1.0)
    assert (tmp_path / FULL_MARK).exists()
    assert "workers drop new reports" in log[-1]
    store.down = False
    uploader.step(1000.0)
    uploader.check_spool(2000.0)
    assert not (tmp_path / FULL_MARK).exists()
    assert "under its bound again" in log[-1]


def test_a_stale_mark_is_cleared_at_the_first_look(tmp_path):
    (tmp_path / FULL_MARK).touch()
    Uploader(str(tmp_path), MemoryStore(), LOCATION, spool_max_bytes=10**9).step()
    assert not (tmp_path / FULL_MARK).exists()
