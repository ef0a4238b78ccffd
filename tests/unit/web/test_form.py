"""The filter form: its fields, and the selection read back from what it sends."""

from __future__ import annotations

import re

import pytest

from gunicorn_pyinstrument.catalog import QUERY_KEYS, Query
from gunicorn_pyinstrument.web.form import check_keys, describe, filter_form, parse_selection


def test_parse_selection_names_the_bad_field() -> None:
    base = Query(label="v1")
    assert parse_selection({"status": "5xx"}, base) == Query(label="v1", status="5xx")
    assert parse_selection({"label": "v2"}, base) == Query(label="v2")
    with pytest.raises(ValueError, match=r"^min duration: not a duration"):
        parse_selection({"min_duration": "soon"}, base)
    with pytest.raises(ValueError, match=r"^path: bad regular expression"):
        parse_selection({"path": "("}, base)


def test_check_keys() -> None:
    check_keys({"label": "v1", "sort": "time"}, ("sort",))
    with pytest.raises(ValueError, match="unknown parameter 'labl'"):
        check_keys({"labl": "v1"}, ("sort",))


def test_describe_gives_back_the_query() -> None:
    query = Query.parse(
        {
            "path": "^/api/(a|b),x",
            "method": "GET",
            "status": "5xx",
            "min_duration": "250ms",
            "label": "v 1",
            "since": "2026-11-26T10:00:00Z",
            "worker": "42",
            "kind": "request",
            "endpoint": "GET /users/{n}",
        }
    )
    words = describe(query)
    assert "min_duration=0.25s" in words
    assert "since=2026-11-26T10:00:00.000Z" in words
    again = Query.parse(dict(w.split("=", 1) for w in words))
    assert again.fields().keys() == query.fields().keys()
    assert again.path is not None and query.path is not None
    assert again.path.pattern == query.path.pattern
    assert {k: v for k, v in again.fields().items() if k != "path"} == {
        k: v for k, v in query.fields().items() if k != "path"
    }


def test_the_form_has_one_field_per_selection_key_and_escapes_values() -> None:
    form = filter_form("/", {"label": '"><script>x</script>', "kind": "worker"}, {"sort": "path"})
    names = re.findall(r'name="([^"]+)"', form)
    assert [n for n in names if n != "sort"] == list(QUERY_KEYS)
    assert "<script>" not in form
    assert 'value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in form
    assert '<option value="worker" selected>' in form
    assert '<input type="hidden" name="sort" value="path">' in form
