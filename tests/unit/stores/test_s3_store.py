"""The S3 store's addressing: object keys by day, host and report name, the day prefixes of a time
range, and its errors as OS errors."""

from __future__ import annotations

from synthetic import T0

from gunicorn_pyinstrument.inputs import S3Location
from gunicorn_pyinstrument.stores import s3
from gunicorn_pyinstrument.stores.s3 import MissingObject, StoreError

DAY = "2025-11-24"
LOCATION = S3Location("fleet-reports", "prod/web")


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
