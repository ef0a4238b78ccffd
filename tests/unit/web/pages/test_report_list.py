"""The report list's controls: sorting and paging. The pages themselves are tested against real
reports in tests/integration/test_web.py."""

from __future__ import annotations

import pytest

from gunicorn_pyinstrument.catalog import ORDERS
from gunicorn_pyinstrument.web.pages.report_list import (
    DEFAULT_LIMIT,
    LIST_COLUMNS,
    MAX_LIMIT,
    ListControls,
    list_controls,
)


def test_list_controls() -> None:
    assert list_controls({}) == ListControls("time", True, DEFAULT_LIMIT, 0)
    assert list_controls({"sort": "path"}) == ListControls("path", False, DEFAULT_LIMIT, 0)
    assert list_controls({"sort": "duration", "order": "asc", "limit": "5", "offset": "10"}) == (
        ListControls("duration", False, 5, 10)
    )
    for bad in ({"sort": "start"}, {"order": "up"}, {"limit": "0"}, {"limit": "1e3"}, {"offset": "-1"}):
        with pytest.raises(ValueError):
            list_controls(bad)
    with pytest.raises(ValueError, match="limit"):
        list_controls({"limit": str(MAX_LIMIT + 1)})


def test_every_catalog_order_is_a_sortable_column() -> None:
    assert {order for _, _, order in LIST_COLUMNS if order} == set(ORDERS)
