"""Object storage without a server: URLs and keys, the uploader, the spool bound, the CLI's local
copy (mirror) and the settings, against an in-memory store that can be switched off.

The same code against a real S3 protocol server is in tests/integration/test_s3.py.
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import pytest
from synthetic import T0, session_of, write_report

from gunicorn_pyinstrument import cli
from gunicorn_pyinstrument import settings as S
from gunicorn_pyinstrument.catalog import Catalog, attach_source
from gunicorn_pyinstrument.directory import FULL_MARK, JOB_SUFFIX, METADATA_SUFFIX, SPOOL_DIR
from gunicorn_pyinstrument.helper.rendering import drain
from gunicorn_pyinstrument.helper.upload import Uploader, pending_reports, spool_bytes
from gunicorn_pyinstrument.logs import ThrottledLog
from gunicorn_pyinstrument.reading.mirror import Mirror, default_cache_dir
from gunicorn_pyinstrument.report import Report
from gunicorn_pyinstrument.stores import s3
from gunicorn_pyinstrument.stores.s3 import MissingObject, S3Location, StoreError, parse_s3_url
from gunicorn_pyinstrument.worker.writer import Writer

DAY = "2025-11-24"
LOCATION = S3Location("fleet-reports", "prod/web")


class MemoryStore:
    """put/get/list like S3Store, in memory; ``down`` makes every call fail like an unreachable store."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.puts: list[str] = []
        self.gets: list[str] = []
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreError("cannot reach the store: Connection refused")

    def put(self, key: str, data: bytes) -> None:
        self._check()
        self.objects[key] = data
        self.puts.append(key)

    def get(self, key: str) -> bytes:
        self._check()
        self.gets.append(key)
        if key not in self.objects:
            raise MissingObject(f"no {key}")
        return self.objects[key]

    def list(self, prefix: str):
        self._check()
        return sorted((k, len(v)) for k, v in self.objects.items() if k.startswith(prefix))


def local_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if not p.name.startswith("."))


class Lines(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


# --- URLs and keys ---


@pytest.mark.parametrize(
    ("url", "bucket", "prefix"),
    [
        ("s3://fleet-reports", "fleet-reports", ""),
        ("s3://fleet-reports/", "fleet-reports", ""),
        ("s3://fleet-reports/prod/web/", "fleet-reports", "prod/web"),
        ("s3://my.bucket-1/a", "my.bucket-1", "a"),
    ],
)
def test_s3_urls_parse(url, bucket, prefix):
    location = parse_s3_url(url)
    assert (location.bucket, location.prefix) == (bucket, prefix)
    assert str(location) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "fleet-reports/x",
        "http://fleet-reports",
        "s3://",
        "s3://ab",
        "s3://Upper",
        "s3://a_b/x",
        "s3://abc/a//b",
        "s3://abc/../x",
        "s3://abc/a\nb",
    ],
)
def test_bad_s3_urls_are_refused(url):
    with pytest.raises(ValueError):
        parse_s3_url(url)


def test_keys_carry_day_host_and_the_report_name():
    record = {"name": "20251124T160000.000000Z_GET_root_1ms_100-a1b2c3-1", "hostname": "web-1.example/x"}
    key = s3.object_key(LOCATION, record, record["name"] + ".html")
    assert key == "prod/web/2025-11-24/web-1.example_x/20251124T160000.000000Z_GET_root_1ms_100-a1b2c3-1.html"
    # Without a time stamp in the name, the record's start time decides the day.
    assert s3.report_day("notes", T0) == DAY
    assert s3.report_day("notes", None) == s3.UNDATED
    assert s3.host_part("") == "unknown-host"
    assert S3Location("b-b-b").key("d", "f") == "d/f"


def test_day_prefixes_cover_the_range_with_a_day_of_margin():
    prefixes = s3.day_prefixes(LOCATION, T0, T0 + 86400)
    assert prefixes == [f"prod/web/2025-11-{d}/" for d in (23, 24, 25, 26)]


def test_store_error_is_an_os_error_and_missing_object_a_file_not_found():
    assert issubclass(StoreError, OSError)
    assert issubclass(MissingObject, FileNotFoundError) and issubclass(MissingObject, StoreError)


# --- settings ---


def test_upload_settings_parse_and_default():
    got = S.load({"GUNICORN_PYINSTRUMENT_UPLOAD": "s3://fleet-reports/prod/"})
    assert got.upload == S3Location("fleet-reports", "prod")
    defaults = S.load({})
    assert defaults.upload is None and defaults.s3_endpoint_url is None and defaults.cache_dir is None
    assert defaults.spool_max_bytes == 1_000_000_000
    assert S.load({"GUNICORN_PYINSTRUMENT_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}).s3_endpoint_url


@pytest.mark.parametrize("limit", ["GUNICORN_PYINSTRUMENT_MAX_REPORTS", "GUNICORN_PYINSTRUMENT_MAX_BYTES"])
def test_retention_limits_are_refused_with_upload(limit):
    with pytest.raises(S.SettingError) as info:
        S.load({"GUNICORN_PYINSTRUMENT_UPLOAD": "s3://fleet-reports", limit: "100"})
    message = str(info.value)
    assert message.startswith(f"{limit}='100' cannot be used with GUNICORN_PYINSTRUMENT_UPLOAD")
    assert "\n" not in message and "lifecycle" in message


def test_missing_boto3_is_one_line_naming_the_variable_and_the_extra(monkeypatch):
    monkeypatch.setattr(S, "boto3_available", lambda: False)
    settings = S.load({"GUNICORN_PYINSTRUMENT_UPLOAD": "s3://fleet-reports/p"})
    with pytest.raises(S.SettingError) as info:
        S.prepare_upload(settings)
    message = str(info.value)
    assert message.startswith("GUNICORN_PYINSTRUMENT_UPLOAD='s3://fleet-reports/p' needs boto3")
    assert "pip install 'gunicorn-pyinstrument[s3]'" in message and "\n" not in message
    S.prepare_upload(S.load({}))  # nothing to check without an upload


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


def test_a_bounded_writer_drops_while_the_mark_is_there(tmp_path):
    records: list[str] = []

    class Log:
        def warning(self, message, exc_info=False):
            records.append(message)

    writer = Writer(str(tmp_path), 0o600, 4, ThrottledLog(Log()), bounded=True)
    (tmp_path / FULL_MARK).touch()
    report = write_report(tmp_path, writer=writer)
    writer.submit(report, session_of(T0, 0.1))
    assert writer.close(5)
    assert writer.spool_dropped == 1 and writer.written == 0
    assert "over GUNICORN_PYINSTRUMENT_SPOOL_MAX_BYTES" in records[0]
    # An unbounded writer (no upload configured) ignores a mark left behind.
    plain = Writer(str(tmp_path), 0o600, 4, ThrottledLog(Log()))
    plain.submit(report, session_of(T0, 0.1))
    assert plain.close(5) and plain.written == 1


# --- the CLI's local copy ---


def uploaded(tmp_path: Path, store: MemoryStore, count: int = 3, **kwargs) -> list[Report]:
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    reports = [write_report(source, start=T0 + i, **kwargs) for i in range(count)]
    drain(str(source))  # render the other formats, as the helper process does
    Uploader(str(source), store, LOCATION).upload_all()
    return reports


def test_mirror_downloads_records_once_and_files_on_demand(tmp_path):
    store = MemoryStore()
    reports = uploaded(tmp_path, store, formats=("session", "html"), count=1)
    reports += uploaded(tmp_path, store, formats=("session",), count=2)
    mirror = Mirror(LOCATION, str(tmp_path / "cache"), store).attach()
    try:
        result = mirror.sync()
        assert (result.reports, result.downloaded, result.removed) == (3, 3, 0)
        assert all(k.endswith(METADATA_SUFFIX) for k in store.gets)
        assert mirror.sync().downloaded == 0
        with Catalog(mirror.directory) as cat:
            entries = cat.entries()
            assert sorted(e.name for e in entries) == sorted(r.name for r in reports)
            # Sizes are the stored ones, though only the records are here.
            for entry in entries:
                keys = [k for k in store.objects if entry.name in k]
                assert entry.bytes == sum(len(store.objects[k]) for k in keys)
            session = cat.load_session(entries[0])
            assert session.sample_count == 1
            gets = len(store.gets)
            cat.load_session(entries[0])
            assert len(store.gets) == gets  # not twice
    finally:
        attach_source(mirror.directory, None)


def test_mirror_forgets_reports_gone_from_the_bucket(tmp_path):
    store = MemoryStore()
    reports = uploaded(tmp_path, store)
    mirror = Mirror(LOCATION, str(tmp_path / "cache"), store)
    mirror.sync()
    for key in [k for k in store.objects if reports[0].name in k]:
        del store.objects[key]
    assert mirror.sync().removed == 1
    assert not os.path.exists(os.path.join(mirror.directory, reports[0].metadata_name))


def test_mirror_with_since_lists_only_the_days_needed(tmp_path):
    store = MemoryStore()
    uploaded(tmp_path, store)
    listed: list[str] = []
    original = store.list

    def spy(prefix):
        listed.append(prefix)
        return original(prefix)

    store.list = spy  # type: ignore[method-assign]
    mirror = Mirror(LOCATION, str(tmp_path / "cache"), store)
    assert mirror.sync(since=T0 + 30 * 86400, until=T0 + 32 * 86400).downloaded == 0
    assert listed == [f"prod/web/2025-12-{d}/" for d in range(23, 28)]
    assert mirror.sync(since=T0 - 60, until=T0 + 60).downloaded == 3
    # A long range is one listing of the whole prefix.
    listed.clear()
    mirror.sync(since=T0 - 365 * 86400)
    assert listed == ["prod/web/"]


def test_a_missing_object_is_a_file_not_found(tmp_path):
    store = MemoryStore()
    reports = uploaded(tmp_path, store, count=1)
    mirror = Mirror(LOCATION, str(tmp_path / "cache"), store)
    mirror.sync()
    del store.objects[next(k for k in store.objects if k.endswith(".pyisession"))]
    with pytest.raises(FileNotFoundError):
        mirror.fetch(reports[0].filename("session"))


def test_default_cache_dir_is_per_bucket_prefix_and_endpoint(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    one = default_cache_dir(LOCATION)
    assert one.startswith(str(tmp_path / "gunicorn-pyinstrument" / "s3" / "fleet-reports"))
    assert one != default_cache_dir(S3Location("fleet-reports", "other"))
    assert one != default_cache_dir(LOCATION, "http://127.0.0.1:9000")


# --- the command line ---


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return cli.main(list(argv), out), out.getvalue()


def test_prune_on_a_bucket_recommends_lifecycle_rules(capsys):
    code, _ = run_cli("prune", "--dir", "s3://fleet-reports/prod", "--max-reports", "5")
    assert code == 2
    err = capsys.readouterr().err
    assert "lifecycle rule" in err and err.count("\n") == 1


def test_a_bad_bucket_url_is_one_line(capsys):
    code, _ = run_cli("list", "--dir", "s3://x")
    assert code == 2
    assert "bad bucket name" in capsys.readouterr().err


def test_upload_needs_a_destination(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("GUNICORN_PYINSTRUMENT_UPLOAD", raising=False)
    code, _ = run_cli("upload", "--dir", str(tmp_path))
    assert code == 2
    assert "--to s3://BUCKET/PREFIX" in capsys.readouterr().err
