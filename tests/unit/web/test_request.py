"""Reading a request: targets split into path segments, query parameters."""

from __future__ import annotations

import pytest

from gunicorn_pyinstrument.web.request import MAX_FIELDS, MAX_TARGET, parse_params, split_target
from gunicorn_pyinstrument.web.response import HTTPError


@pytest.mark.parametrize(
    ("target", "parts", "query"),
    [
        ("/", [""], ""),
        ("/top?sort=count", ["top"], "sort=count"),
        ("/report/..%2F..%2Fetc%2Fpasswd", ["report", "../../etc/passwd"], ""),
        ("/file/%2e%2e/x", ["file", "..", "x"], ""),
        ("/report/%00", ["report", "\x00"], ""),
        ("/report/a%20b?x=1#frag", ["report", "a b"], "x=1"),
        ("/report/caf%C3%A9", ["report", "café"], ""),
    ],
)
def test_split_target_decodes_each_segment_after_splitting(target: str, parts: list[str], query: str) -> None:
    assert split_target(target) == (parts, query)


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/report/%ff", 400),  # not UTF-8
        ("/" + "a" * MAX_TARGET, 400),
        ("http://example.com/", 404),  # absolute form: not a path of this site
        ("*", 404),
    ],
)
def test_split_target_refuses(target: str, status: int) -> None:
    with pytest.raises(HTTPError) as caught:
        split_target(target)
    assert caught.value.status == status


def test_parse_params() -> None:
    assert parse_params("a=label%3Dv1&b=label=v2&path=&x=1&x=2") == {
        "a": "label=v1",
        "b": "label=v2",
        "path": "",
        "x": "2",
    }
    with pytest.raises(HTTPError) as caught:
        parse_params("&".join(f"k{i}=1" for i in range(MAX_FIELDS + 1)))
    assert caught.value.status == 400
    with pytest.raises(HTTPError):
        parse_params("label=%ff")
