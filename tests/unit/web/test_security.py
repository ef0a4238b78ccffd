"""What the site lets a browser do and whom it answers: the Host check, the security policy of
the site's pages and of pyinstrument's viewer."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from gunicorn_pyinstrument.formats import render
from gunicorn_pyinstrument.web.layout import layout
from gunicorn_pyinstrument.web.security import PAGE_CSP, host_allowed, script_safe, viewer_csp, viewer_scripts


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
    assert host_allowed(header, bound) is allowed


def test_pages_allow_exactly_their_style_sheet() -> None:
    document = layout('A <title> & "more"', "<p>x</p>", {"label": "v<1>"}).decode()
    [style] = re.findall(r"<style>(.*?)</style>", document, re.DOTALL)
    assert sha256(style.encode()) in PAGE_CSP
    # Scripts from this origin's files only: never an inline one, never eval.
    assert "script-src 'self';" in PAGE_CSP and "unsafe" not in PAGE_CSP
    assert "<title>A &lt;title&gt; &amp; &quot;more&quot; · gunicorn-pyinstrument</title>" in document
    assert 'href="/?label=v%3C1%3E"' in document


def test_the_viewer_runs_its_two_scripts_only() -> None:
    document = render(session_of(), "html")
    scripts = viewer_scripts(document)
    assert len(scripts) == 2
    assert scripts[0].startswith(b"var pyinstrumentHTMLRenderer")
    assert b"const sessionData = " in scripts[1]
    csp = viewer_csp(document)
    assert all(sha256(s) in csp for s in scripts)
    assert "'unsafe-inline'" not in csp.split("script-src", 1)[1].split(";", 1)[0]
    assert "'unsafe-eval'" not in csp


def test_crlf_line_ends_are_hashed_as_the_browser_reads_them() -> None:
    document = render(session_of(), "html").replace(b"\n", b"\r\n")
    assert all(b"\r" not in s for s in viewer_scripts(document))
    assert len(viewer_scripts(document)) == 2


def test_a_session_that_closes_the_script_element_runs_nothing_of_it() -> None:
    injected = "</script><script>alert(1)</script>"
    document = render(session_of(injected), "html")
    assert b"<script>alert(1)</script>" in document  # pyinstrument leaves it as is
    scripts = viewer_scripts(document)
    assert len(scripts) == 1  # the app bundle; neither the cut bootstrap nor the stray script
    assert sha256(b"alert(1)") not in viewer_csp(document)
    # The server's own renderings keep such text out of the script, and the viewer working.
    safe = render(session_of(script_safe(injected)), "html")
    assert b"alert(1)" in safe and b"<script>alert(1)" not in safe
    assert len(viewer_scripts(safe)) == 2


def test_a_bootstrap_with_code_in_place_of_data_is_refused() -> None:
    call = b"pyinstrumentHTMLRenderer.render(document.getElementById('app'), sessionData);"
    good = b'<script>bundle</script><script>const sessionData = {"a": [1]};' + call + b"</script>"
    bad = b"<script>bundle</script><script>const sessionData = {}; fetch('x'); x = {};" + call + b"</script>"
    assert viewer_scripts(good) == [b"bundle", b'const sessionData = {"a": [1]};' + call]
    assert viewer_scripts(bad) == [b"bundle"]
    assert "script-src 'none'" in viewer_csp(b"<p>no script</p>")
