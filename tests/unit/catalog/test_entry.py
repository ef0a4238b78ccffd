"""An entry (``catalog/entry.py``): what it tells of its report beyond the record's fields."""

from __future__ import annotations

import math

from synthetic import T0, write_report

from gunicorn_pyinstrument import catalog as catalog_module
from gunicorn_pyinstrument.catalog import Catalog


def test_endpoint_of_a_request_entry(tmp_path):
    write_report(tmp_path, method="PATCH", path="/users/12/avatar")
    with Catalog(str(tmp_path)) as cat:
        [entry] = cat.entries()
    assert entry.endpoint == "PATCH /users/{n}/avatar"
    assert entry.worker == "100-aaaaaa"
    assert math.isclose(entry.end, T0 + 0.1)
    assert catalog_module.strip_suffix(entry.name + ".speedscope.json") == entry.name
