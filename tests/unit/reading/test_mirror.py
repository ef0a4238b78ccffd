"""The local copy of a bucket (mirror), against an in-memory store: records downloaded once, files
on demand, reports gone from the bucket forgotten, only the days needed listed, and the cache
directory per bucket, prefix and endpoint.

The same code against a real S3 protocol server is in tests/integration/test_s3.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakes import MemoryStore
from synthetic import T0, write_report

from gunicorn_pyinstrument.catalog import Catalog, attach_source
from gunicorn_pyinstrument.directory import METADATA_SUFFIX
from gunicorn_pyinstrument.helper.rendering import drain
from gunicorn_pyinstrument.helper.upload import Uploader
from gunicorn_pyinstrument.inputs import S3Location
from gunicorn_pyinstrument.reading.mirror import Mirror, default_cache_dir
from gunicorn_pyinstrument.report import Report

LOCATION = S3Location("fleet-reports", "prod/web")


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
