"""The site's HTML: links."""

from __future__ import annotations

from gunicorn_pyinstrument.web.layout import file_link, link, report_link


def test_links_quote_names_and_parameters() -> None:
    assert report_link("a b/../c") == "/report/a%20b%2F..%2Fc"
    assert file_link("n", "html") == "/file/n/html"
    assert link("/merge", {"endpoint": "GET /users/{n}", "label": "", "a": "label=v1"}) == (
        "/merge?endpoint=GET+%2Fusers%2F%7Bn%7D&a=label%3Dv1"
    )
    assert link("/", {}) == "/"
