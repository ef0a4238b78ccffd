"""The web page's pure parts: request targets, parameters, hosts, the form, the security policy
of pyinstrument's viewer. The pages themselves are tested against real reports in
tests/integration/test_web.py."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from gunicorn_pyinstrument import web
from gunicorn_pyinstrument.catalog import ORDERS, SELECTION_KEYS, Query
from gunicorn_pyinstrument.formats import render


def sha256(data: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode() + "'"


def some_work() -> int:
    return sum(i * i for i in range(20000))


def session_of(description: str | None = None):  # type: ignore[no-untyped-def]
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0001)
    profiler.start(target_description=description)
    for _ in range(5):
        some_work()
    profiler.stop()
    return profiler.last_session


# --- targets and parameters ---


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
    assert web.split_target(target) == (parts, query)


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/report/%ff", 400),  # not UTF-8
        ("/" + "a" * web.MAX_TARGET, 400),
        ("http://example.com/", 404),  # absolute form: not a path of this site
        ("*", 404),
    ],
)
def test_split_target_refuses(target: str, status: int) -> None:
    with pytest.raises(web.HTTPError) as caught:
        web.split_target(target)
    assert caught.value.status == status


def test_parse_params() -> None:
    assert web.parse_params("a=label%3Dv1&b=label=v2&path=&x=1&x=2") == {
        "a": "label=v1",
        "b": "label=v2",
        "path": "",
        "x": "2",
    }
    with pytest.raises(web.HTTPError) as caught:
        web.parse_params("&".join(f"k{i}=1" for i in range(web.MAX_FIELDS + 1)))
    assert caught.value.status == 400
    with pytest.raises(web.HTTPError):
        web.parse_params("label=%ff")


@pytest.mark.parametrize(
    ("header", "bound", "allowed"),
    [
        ("127.0.0.1:8000", "127.0.0.1", True),
        ("localhost:8000", "127.0.0.1", True),
        ("LOCALHOST.", "127.0.0.1", True),
        ("[::1]:8000", "127.0.0.1", True),
        ("127.0.0.2", "127.0.0.1", True),
        (None, "127.0.0.1", True),  # HTTP/1.0 without a Host header
        ("attacker.example:8000", "127.0.0.1", False),
        ("attacker.example", "localhost", False),
        ("127.0.0.1.attacker.example", "127.0.0.1", False),
        ("", "127.0.0.1", False),
        ("[::1", "::1", False),
        ("attacker.example", "0.0.0.0", True),  # bound for the network: any name of the machine
        ("reports.internal:8000", "10.1.2.3", True),
    ],
)
def test_host_allowed(header: str | None, bound: str, allowed: bool) -> None:
    assert web.host_allowed(header, bound) is allowed


def test_list_controls() -> None:
    assert web.list_controls({}) == web.ListControls("time", True, web.DEFAULT_LIMIT, 0)
    assert web.list_controls({"sort": "path"}) == web.ListControls("path", False, web.DEFAULT_LIMIT, 0)
    assert web.list_controls({"sort": "duration", "order": "asc", "limit": "5", "offset": "10"}) == (
        web.ListControls("duration", False, 5, 10)
    )
    for bad in ({"sort": "start"}, {"order": "up"}, {"limit": "0"}, {"limit": "1e3"}, {"offset": "-1"}):
        with pytest.raises(ValueError):
            web.list_controls(bad)
    with pytest.raises(ValueError, match="limit"):
        web.list_controls({"limit": str(web.MAX_LIMIT + 1)})


def test_parse_selection_names_the_bad_field() -> None:
    base = Query(label="v1")
    assert web.parse_selection({"status": "5xx"}, base) == Query(label="v1", status="5xx")
    assert web.parse_selection({"label": "v2"}, base) == Query(label="v2")
    with pytest.raises(ValueError, match=r"^min duration: not a duration"):
        web.parse_selection({"min_duration": "soon"}, base)
    with pytest.raises(ValueError, match=r"^path: bad regular expression"):
        web.parse_selection({"path": "("}, base)


def test_check_keys() -> None:
    web.check_keys({"label": "v1", "sort": "time"}, ("sort",))
    with pytest.raises(ValueError, match="unknown parameter 'labl'"):
        web.check_keys({"labl": "v1"}, ("sort",))


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
    words = web.describe(query)
    assert "min_duration=0.25s" in words
    assert "since=2026-11-26T10:00:00.000Z" in words
    again = Query.parse(dict(w.split("=", 1) for w in words))
    assert again.fields().keys() == query.fields().keys()
    assert again.path is not None and query.path is not None
    assert again.path.pattern == query.path.pattern
    assert {k: v for k, v in again.fields().items() if k != "path"} == {
        k: v for k, v in query.fields().items() if k != "path"
    }


# --- HTML ---


def test_the_form_has_one_field_per_selection_key_and_escapes_values() -> None:
    form = web.filter_form("/", {"label": '"><script>x</script>', "kind": "worker"}, {"sort": "path"})
    names = re.findall(r'name="([^"]+)"', form)
    assert [n for n in names if n != "sort"] == list(SELECTION_KEYS)
    assert "<script>" not in form
    assert 'value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;"' in form
    assert '<option value="worker" selected>' in form
    assert '<input type="hidden" name="sort" value="path">' in form


def test_every_catalog_order_is_a_sortable_column() -> None:
    assert {order for _, _, order in web.LIST_COLUMNS if order} == set(ORDERS)


def test_links_quote_names_and_parameters() -> None:
    assert web.report_link("a b/../c") == "/report/a%20b%2F..%2Fc"
    assert web.file_link("n", "html") == "/file/n/html"
    assert web.link("/merge", {"endpoint": "GET /users/{n}", "label": "", "a": "label=v1"}) == (
        "/merge?endpoint=GET+%2Fusers%2F%7Bn%7D&a=label%3Dv1"
    )
    assert web.link("/", {}) == "/"


def test_pages_allow_exactly_their_style_sheet() -> None:
    document = web.layout('A <title> & "more"', "<p>x</p>", {"label": "v<1>"}).decode()
    [style] = re.findall(r"<style>(.*?)</style>", document, re.DOTALL)
    assert sha256(style.encode()) in web.PAGE_CSP
    assert "script-src" not in web.PAGE_CSP  # no script at all: default-src 'none'
    assert "<title>A &lt;title&gt; &amp; &quot;more&quot; · gunicorn-pyinstrument</title>" in document
    assert 'href="/?label=v%3C1%3E"' in document


def test_error_response_escapes_the_message() -> None:
    response = web.error_response(404, "no report named '<img src=x onerror=alert(1)>'")
    assert response.status == 404
    assert b"<img" not in response.body
    assert b"404 Not Found" in response.body


def test_content_disposition() -> None:
    assert web.content_disposition("a.html") == "attachment; filename=\"a.html\"; filename*=UTF-8''a.html"
    value = web.content_disposition('we"ird;\r\nname é.txt')
    assert "\r" not in value and "\n" not in value
    assert 'filename="we_ird___name__.txt"' in value


# --- pyinstrument's viewer ---


def test_the_viewer_runs_its_two_scripts_only() -> None:
    document = render(session_of(), "html")
    scripts = web.viewer_scripts(document)
    assert len(scripts) == 2
    assert scripts[0].startswith(b"var pyinstrumentHTMLRenderer")
    assert b"const sessionData = " in scripts[1]
    csp = web.viewer_csp(document)
    assert all(sha256(s) in csp for s in scripts)
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "'unsafe-eval'" not in csp


def test_crlf_line_ends_are_hashed_as_the_browser_reads_them() -> None:
    document = render(session_of(), "html").replace(b"\n", b"\r\n")
    assert all(b"\r" not in s for s in web.viewer_scripts(document))
    assert len(web.viewer_scripts(document)) == 2


def test_a_session_that_closes_the_script_element_runs_nothing_of_it() -> None:
    injected = "</script><script>alert(1)</script>"
    document = render(session_of(injected), "html")
    assert b"<script>alert(1)</script>" in document  # pyinstrument leaves it as is
    scripts = web.viewer_scripts(document)
    assert len(scripts) == 1  # the app bundle; neither the cut bootstrap nor the stray script
    assert sha256(b"alert(1)") not in web.viewer_csp(document)
    # The server's own renderings keep such text out of the script, and the viewer working.
    safe = render(session_of(web.script_safe(injected)), "html")
    assert b"alert(1)" in safe and b"<script>alert(1)" not in safe
    assert len(web.viewer_scripts(safe)) == 2


def test_a_bootstrap_with_code_in_place_of_data_is_refused() -> None:
    call = b"pyinstrumentHTMLRenderer.render(document.getElementById('app'), sessionData);"
    good = b'<script>bundle</script><script>const sessionData = {"a": [1]};' + call + b"</script>"
    bad = b"<script>bundle</script><script>const sessionData = {}; fetch('x'); x = {};" + call + b"</script>"
    assert web.viewer_scripts(good) == [b"bundle", b'const sessionData = {"a": [1]};' + call]
    assert web.viewer_scripts(bad) == [b"bundle"]
    assert "script-src 'none'" in web.viewer_csp(b"<p>no script</p>")
