"""The local web page (``gunicorn-pyinstrument serve``) on real reports: a Flask app served twice
by gunicorn, labelled v1 then v2, with alpha_work five times slower under v2.

HTTP-level tests send raw request targets with http.client (urllib would normalize them); the
browser test drives Debian's chromium with playwright."""

from __future__ import annotations

import http.client
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import (
    CONFIG_FILE,
    FLASK_APP,
    REPO_ROOT,
    GunicornFactory,
    get,
    get_many,
    profiling_env,
    raw_exchange,
    wait_for_metadata,
)

from gunicorn_pyinstrument.web import server as web_server

#: (label, formats, requests) of each gunicorn run. v1 keeps HTML files, v2 does not (its viewer
#: is rendered from the session).
RUNS = [
    (
        "v1",
        "session,html,text",
        ["/alpha?s=0.03"] * 3 + ["/beta?s=0.03"] * 2 + ["/users/1", "/users/22", "/error"],
    ),
    ("v2", "session,speedscope", ["/alpha?s=0.15"] * 2 + ["/beta?s=0.03"] * 2 + ["/users/3"]),
]
TOTAL = sum(len(requests) for _, _, requests in RUNS)
SECRET = "secret-outside-the-report-directory"


class Site:
    """The reports and the web server over them."""

    def __init__(self, directory: Path, records: list[dict[str, Any]], server: web_server.WebServer) -> None:
        self.directory = directory
        self.records = records
        self.server = server
        self.url = server.url.rstrip("/")

    def names(self, **match: Any) -> list[str]:
        return [r["name"] for r in self.records if all(r.get(k) == v for k, v in match.items())]

    def record(self, **match: Any) -> dict[str, Any]:
        return next(r for r in self.records if all(r.get(k) == v for k, v in match.items()))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("web")
    directory = root / "reports"
    (root / "secret.txt").write_text(SECRET)
    logs = root / "logs"
    logs.mkdir()
    servers = GunicornFactory(logs)
    try:
        for label, formats, requests in RUNS:
            env = profiling_env(directory, FORMATS=formats, LABEL=label)
            server = servers("-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=env)
            for target in requests:  # one after another: names sort in this order
                assert get(server.url + target)[0] in (200, 500)
            assert server.stop() == 0
    finally:
        servers.cleanup()
    records = wait_for_metadata(directory, TOTAL)
    assert len(records) == TOTAL

    server = web_server.make_server(str(directory))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Site(directory, records, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def fetch(
    site: Site,
    target: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """One request with the target exactly as given; (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=30)
    try:
        conn.request(method, target, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def page(site: Site, target: str, status: int = 200) -> str:
    code, headers, body = fetch(site, target)
    assert code == status, body.decode(errors="replace")[-2000:]
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    text = body.decode()
    assert "Traceback" not in text
    return text


def rows(text: str) -> list[str]:
    """The report names of a list page, in order."""
    return re.findall(r'<tr data-name="([^"]+)"', text)


def durations(text: str) -> list[float]:
    return [float(d) for d in re.findall(r'<tr data-name="[^"]+" data-duration="([^"]+)"', text)]


# --- the list ---


def test_the_list_shows_every_report_newest_first(site: Site) -> None:
    text = page(site, "/")
    names = [r["name"] for r in site.records]
    assert rows(text) == sorted(names, reverse=True)
    for name in names:
        assert f'href="/report/{name}"' in text
    record = site.record(label="v1", path="/beta")
    assert f'href="/file/{record["name"]}/html"' in text
    assert f'href="/file/{record["name"]}/speedscope"' not in text
    assert f"{TOTAL} report(s)" in text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("label=v2", {"label": "v2"}),
        ("path=%5E%2Falpha", {"path": "/alpha"}),
        ("status=5xx", {"status": 500}),
        ("method=get&label=v1", {"label": "v1"}),
        ("endpoint=GET+%2Fusers%2F%7Bn%7D", None),
        ("min_duration=100ms", {"path": "/alpha", "label": "v2"}),
        ("kind=worker", None),
    ],
)
def test_filters(site: Site, query: str, expected: dict[str, Any] | None) -> None:
    text = page(site, "/?" + query)
    if query.startswith("endpoint"):
        users = [r["name"] for r in site.records if r["path"].startswith("/users/")]
        assert sorted(rows(text)) == sorted(users)
    elif expected is None:
        assert rows(text) == []
        assert 'id="empty"' in text
    else:
        assert sorted(rows(text)) == sorted(site.names(**expected))
        assert rows(text)
    # The form shows what was typed.
    for key in (pair.split("=", 1)[0] for pair in query.split("&")):
        if key != "kind":
            assert f'name="{key}" value="' in text


def test_a_worker_filter_and_the_command_line_selection(site: Site, tmp_path: Path) -> None:
    pid = site.record(label="v2")["pid"]
    assert sorted(rows(page(site, f"/?worker={pid}"))) == sorted(site.names(label="v2"))
    # A selection given on the command line is the default; the form's value replaces it.
    from gunicorn_pyinstrument.catalog import Query

    server = web_server.make_server(str(site.directory), query=Query(label="v1"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        other = Site(site.directory, site.records, server)
        text = page(other, "/")
        assert sorted(rows(text)) == sorted(site.names(label="v1"))
        assert "<code>label=v1</code>" in text
        assert sorted(rows(page(other, "/?label=v2"))) == sorted(site.names(label="v2"))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_sorting(site: Site) -> None:
    longest_first = durations(page(site, "/?sort=duration&order=desc"))
    assert len(longest_first) == TOTAL
    assert longest_first == sorted(longest_first, reverse=True)
    assert durations(page(site, "/?sort=duration&order=asc")) == sorted(longest_first)
    # The first click on a column sorts it its natural way; on the current one, turns it round.
    text = page(site, "/?sort=duration")
    assert durations(text) == longest_first
    assert re.search(
        r'<th class="num" data-sort="duration" aria-sort="descending"><a class="sort" '
        r'href="/\?sort=duration&amp;order=asc">',
        text,
    )
    assert 'href="/?sort=path&amp;order=asc"' in text
    by_path = page(site, "/?sort=path&label=v2")
    paths = re.findall(r'class="view" href="[^"]+">([^<]+)</a>', by_path)
    assert paths == sorted(paths) and len(paths) == 5
    assert 'href="/?label=v2&amp;sort=path&amp;order=desc"' in by_path  # filters kept
    oldest_first = rows(page(site, "/?sort=time&order=asc"))
    assert oldest_first == sorted(r["name"] for r in site.records)


def test_paging(site: Site) -> None:
    everything = rows(page(site, "/"))
    first = page(site, "/?limit=5")
    assert rows(first) == everything[:5]
    assert 'id="prev"' not in first
    next_link = re.search(r'id="next" href="([^"]+)"', first)
    assert next_link is not None
    second = page(site, next_link.group(1).replace("&amp;", "&"))
    assert rows(second) == everything[5:10]
    last = page(site, "/?limit=5&offset=10")
    assert rows(last) == everything[10:]
    assert 'id="next"' not in last and 'id="prev"' in last


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=abc", "status: not a status code"),
        ("min_duration=soon", "min duration: not a duration"),
        ("path=%28", "path: bad regular expression"),
        ("since=yesterday", "since: not a time"),
        ("kind=thread", "kind: not a kind"),
        ("sort=size", "cannot sort by"),
        ("order=up", "order must be asc or desc"),
        ("limit=0", "limit must be a whole number"),
        ("offset=-5", "offset must be a whole number"),
        ("lable=v1", "unknown parameter"),
    ],
)
def test_a_bad_value_says_so_with_400(site: Site, query: str, message: str) -> None:
    text = page(site, "/?" + query, status=400)
    assert 'class="error"' in text
    assert message in text
    assert 'id="filters"' in text  # the form is there, to correct it
    assert rows(text) == []


# --- safety ---


@pytest.mark.parametrize(
    "target",
    [
        "/report/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "/report/..%2Fsecret.txt",
        "/report/%2e%2e%2fsecret.txt",
        "/report/..",
        "/report/.",
        "/report/%2e%2e",
        "/file/%2e%2e/x",
        "/file/..%2Fsecret.txt/html",
        "/file/x/..%2F..%2Fsecret.txt",
        "/report/../secret.txt",
        "/report/..%5Csecret.txt",
        "/report/%00",
        "/report/a%00.html",
        "/report/%ff%fe",
        "/report/" + "a" * 8192,
        "/report/" + "%2e" * 3000,
        "/report/" + "a" * 8000,
        "/file/" + "a" * 300 + "/html",
        "/report/secret.txt",
        "/report/.catalog",
        "/file/.catalog/index.sqlite3",
        "/report",
        "/report/",
        "/file/x",
        "/static/../../secret.txt",
        "//etc/passwd",
        "/favicon.ico",
    ],
)
def test_traversal_and_junk_never_leave_the_directory(site: Site, target: str) -> None:
    status, headers, body = fetch(site, target)
    assert status in (400, 404), status
    assert SECRET.encode() not in body
    assert b"root:" not in body
    assert headers["Content-Type"] == "text/html; charset=utf-8"


def test_only_the_report_files_are_served(site: Site) -> None:
    v1 = site.record(label="v1", path="/alpha")
    v2 = site.record(label="v2", path="/alpha")
    for name, fmts in ((v1["name"], ("speedscope", "pstats")), (v2["name"], ("html", "text", "pstats"))):
        for fmt in (*fmts, "meta", "meta.json", "json", "..", "session/x"):
            assert fetch(site, f"/file/{name}/{fmt}")[0] == 404, (name, fmt)
    # A report's own files, suffix included, are not report names.
    for filename in (v1["files"]["html"], v1["name"] + ".meta.json"):
        assert fetch(site, f"/report/{filename}")[0] == 404


def test_raw_requests(site: Site) -> None:
    port = site.server.port
    for raw in (
        b"GET /report/\x00 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        b"GET /report/..\\..\\secret.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        b"GET /report/" + b"a" * 70000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Big: " + b"x" * 70000 + b"\r\n\r\n",
    ):
        reply = raw_exchange(port, raw, timeout=10)
        status = int(reply.split(b" ", 2)[1])
        assert status in (400, 404, 414, 431), reply[:200]
        assert SECRET.encode() not in reply
    # Still serving.
    assert fetch(site, "/")[0] == 200


def test_a_foreign_host_name_is_refused(site: Site) -> None:
    """A web page that rebinds its own DNS name to 127.0.0.1 must not read the reports."""
    status, _, body = fetch(site, "/", headers={"Host": f"attacker.example:{site.server.port}"})
    assert status == 400
    assert site.records[0]["name"].encode() not in body
    assert fetch(site, "/", headers={"Host": f"localhost:{site.server.port}"})[0] == 200


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_only_get_and_head(site: Site, method: str) -> None:
    name = site.records[0]["name"]
    status, headers, body = fetch(site, f"/report/{name}", method=method, body=b"x=1")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert b"not allowed" in body
    assert (site.directory / (name + ".meta.json")).exists()
    status, headers, body = fetch(site, "/", method="HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) > 1000


def test_keep_alive_and_a_request_body_that_is_not_read(site: Site) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=30)
    try:
        for _ in range(3):  # one connection, several requests
            conn.request("GET", "/top")
            assert conn.getresponse().read()
        conn.request("POST", "/", body=b"GET /report/x HTTP/1.1\r\n\r\n")  # smuggled? never read
        response = conn.getresponse()
        assert response.status == 405 and response.headers["Connection"] == "close"
        response.read()
    finally:
        conn.close()


def test_an_error_in_a_page_is_one_line_and_a_500(
    site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    page(site, "/")
    assert capsys.readouterr().err == ""  # quiet: no line per request

    def broken(directory: str) -> Any:
        raise RuntimeError("the disk\nis on fire")

    monkeypatch.setattr(web_server, "Catalog", broken)
    status, _, body = fetch(site, "/?label=v1")
    assert status == 500
    assert b"Traceback" not in body and b"fire" not in body
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "RuntimeError: the disk is on fire" in err
    assert "/?label=v1" in err
    monkeypatch.undo()
    assert fetch(site, "/")[0] == 200


def test_concurrent_requests(site: Site) -> None:
    """One catalog per request: threads never share a sqlite3 connection."""
    names = [r["name"] for r in site.records]
    urls = [site.url + t for t in ["/", "/top", "/?label=v1", f"/report/{names[0]}"] * 4]
    assert [status for status, _ in get_many(urls, concurrency=8)] == [200] * len(urls)


def test_a_directory_that_goes_away(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = tmp_path / "gone"
    directory.mkdir()
    server = web_server.make_server(str(directory))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        other = Site(directory, [], server)
        assert 'id="empty"' in page(other, "/")
        shutil.rmtree(directory)  # with the index the page made in it
        assert f"report directory {directory} does not exist" in page(other, "/", status=500)
        assert capsys.readouterr().err.count("\n") == 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


# --- reports, files, endpoints, comparisons ---


def test_a_report_is_served_as_it_is_on_disk(site: Site) -> None:
    record = site.record(label="v1", path="/alpha")
    status, headers, body = fetch(site, f"/report/{record['name']}")
    assert status == 200
    assert body == (site.directory / record["files"]["html"]).read_bytes()
    csp = headers["Content-Security-Policy"]
    assert len(re.findall(r"'sha256-", csp)) == 2
    assert "'unsafe-eval'" not in csp and "script-src 'unsafe-inline'" not in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert fetch(site, f"/report/{record['name']}", method="HEAD")[2] == b""


def test_a_report_without_html_is_rendered_from_its_session(site: Site) -> None:
    record = site.record(label="v2", path="/alpha")
    assert "html" not in record["files"]
    status, headers, body = fetch(site, f"/report/{record['name']}")
    assert status == 200
    assert b"pyinstrumentHTMLRenderer" in body and b"alpha_work" in body
    assert len(re.findall(r"'sha256-", headers["Content-Security-Policy"])) == 2


@pytest.mark.parametrize(
    ("label", "fmt", "content_type"),
    [
        ("v1", "html", "text/html; charset=utf-8"),
        ("v1", "text", "text/plain; charset=utf-8"),
        ("v1", "session", "application/json"),
        ("v2", "speedscope", "application/json"),
        ("v2", "session", "application/json"),
    ],
)
def test_file_downloads(site: Site, label: str, fmt: str, content_type: str) -> None:
    record = site.record(label=label, path="/beta")
    status, headers, body = fetch(site, f"/file/{record['name']}/{fmt}")
    assert status == 200
    assert body == (site.directory / record["files"][fmt]).read_bytes()
    assert headers["Content-Type"] == content_type
    assert headers["Content-Disposition"].startswith(f'attachment; filename="{record["files"][fmt]}"')
    assert "sandbox" in headers["Content-Security-Policy"]
    assert int(headers["Content-Length"]) == len(body)
    status, headers, body = fetch(site, f"/file/{record['name']}/{fmt}", method="HEAD")
    assert (status, body) == (200, b"")


def test_a_report_file_that_is_a_link_is_not_followed(site: Site, tmp_path: Path) -> None:
    record = site.record(label="v1", path="/users/1")
    path = site.directory / record["files"]["text"]
    original = path.read_bytes()
    path.unlink()
    path.symlink_to(site.directory.parent / "secret.txt")
    try:
        status, _, body = fetch(site, f"/file/{record['name']}/text")
        assert status == 404
        assert SECRET.encode() not in body
    finally:
        path.unlink()
        path.write_bytes(original)


def test_top_and_the_merged_view(site: Site) -> None:
    text = page(site, "/top")
    endpoints = re.findall(r'<tr data-endpoint="([^"]+)"', text)
    assert set(endpoints) == {"GET /alpha", "GET /beta", "GET /users/{n}", "GET /error"}
    assert endpoints[0] == "GET /alpha"  # the most time in total
    counts = dict(re.findall(r'<tr data-endpoint="([^"]+)">.*?</td><td>(\d+)</td>', text))
    assert counts["GET /users/{n}"] == "3"
    merge = re.search(r'<tr data-endpoint="GET /alpha">.*?<a class="merge" href="([^"]+)"', text)
    assert merge is not None
    status, headers, body = fetch(site, merge.group(1).replace("&amp;", "&"))
    assert status == 200
    assert b"alpha_work" in body and b"beta_work" not in body
    assert b"GET /alpha: 5 report(s) merged" in body
    assert len(re.findall(r"'sha256-", headers["Content-Security-Policy"])) == 2
    # Filters carry over to the merge links, and sorting works.
    filtered = page(site, "/top?label=v2&sort=count")
    assert 'href="/merge?endpoint=GET+%2Falpha&amp;label=v2"' in filtered
    assert re.findall(r'<tr data-endpoint="([^"]+)"', filtered)[0] in ("GET /alpha", "GET /beta")
    assert page(site, "/top?sort=median", status=400)
    assert fetch(site, "/merge?label=v9")[0] == 404
    assert fetch(site, "/merge?status=abc")[0] == 400


def test_diff(site: Site) -> None:
    text = page(site, "/diff?a=label%3Dv1&b=label%3Dv2&path=%5E%2Falpha")
    first = re.search(
        r'<table id="diff">.*?<tbody><tr class="(\w+)"><td class="name">([^<]+)</td>.*?'
        r'<td class="where">([^<]+)</td>',
        text,
    )
    assert first is not None, text[-3000:]
    assert first.group(1) == "slower"
    assert "flask_app.py" in first.group(3)
    alpha = re.search(
        r'<tr class="\w+"><td class="name">alpha_work</td>((?:<td>[^<]*</td>|<td class="delta">[^<]*</td>)+)',
        text,
    )
    assert alpha is not None
    cells = re.findall(r">([^<]*)</td>", alpha.group(1))
    total_delta = float(cells[6])
    assert total_delta > 50  # ms per report: 150 against 30
    assert "label=v1" in text and "3 report(s)" in text and "2 report(s)" in text
    # The navigation keeps the common selection only: each page takes it.
    for nav in ("list", "top", "diff"):
        target = re.search(rf'id="nav-{nav}" href="([^"]+)"', text)
        assert target is not None
        assert "label%3Dv1" not in target.group(1)
        page(site, target.group(1).replace("&amp;", "&"))
    # The form alone, then mistakes.
    assert 'id="diff-a"' in page(site, "/diff")
    assert "give both sides" in page(site, "/diff?a=label%3Dv1", status=400)
    assert "bad selection" in page(site, "/diff?a=lable%3Dv1&b=label%3Dv2", status=400)
    assert "no report matches" in page(site, "/diff?a=label%3Dv9&b=label%3Dv2", status=404)
    one = site.record(label="v1", path="/alpha")["name"]
    assert 'id="diff"' in page(site, f"/diff?a={one}&b=label%3Dv2")  # a report name as one side


def test_serve_prints_its_url_and_stops_on_ctrl_c(site: Site) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn_pyinstrument", "--dir", str(site.directory), "serve", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"serving (.+) at http://127\.0\.0\.1:(\d+)/ \(Ctrl-C to stop\)\n", line)
        assert match is not None, line
        assert match.group(1) == str(site.directory)
        status, body = get(f"http://127.0.0.1:{match.group(2)}/?label=v2")
        assert status == 200 and len(rows(body.decode())) == 5
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert proc.stderr is not None and proc.stderr.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_serve_refuses_a_missing_directory(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn_pyinstrument",
            "--dir",
            str(tmp_path / "none"),
            "serve",
            "--port",
            "0",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "does not exist" in result.stderr


# --- a real browser ---


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make browser installs it)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[test]')"
    )
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield instance
        finally:
            instance.close()


def test_in_a_browser(site: Site, browser: Any) -> None:
    context = browser.new_context()
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    problems: list[str] = []
    # A page's failed load (the 400 below) is logged as "Failed to load resource": expected.
    tab.on(
        "console",
        lambda msg: (
            problems.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    tab.on("pageerror", lambda exc: problems.append(str(exc)))
    try:
        # The list; filter by typing in the form.
        tab.goto(site.url + "/")
        assert tab.locator("#reports tbody tr").count() == TOTAL
        tab.fill("#f-label", "v2")
        tab.click("#apply")
        tab.wait_for_url(re.compile(r"label=v2"))
        assert tab.locator("#reports tbody tr").count() == 5
        assert set(tab.locator("#reports td.label").all_inner_texts()) == {"v2"}

        # Sort by duration: a click, then another turns it round.
        tab.click("th[data-sort=duration] a")
        tab.wait_for_url(re.compile(r"sort=duration"))
        shown = [float(t) for t in tab.locator("#reports td.duration").all_inner_texts()]
        assert shown == sorted(shown, reverse=True) and len(shown) == 5
        tab.click("th[data-sort=duration] a")
        tab.wait_for_url(re.compile(r"order=asc"))
        shown = [float(t) for t in tab.locator("#reports td.duration").all_inner_texts()]
        assert shown == sorted(shown)
        assert "label=v2" in tab.url

        # The slowest report, in pyinstrument's viewer (rendered from its session: v2 has no HTML).
        tab.locator("#reports tbody tr").last.locator("a.view").click()
        tab.wait_for_url(re.compile(r"/report/"))
        tab.get_by_text("alpha_work").first.wait_for()

        # A report with an HTML file: the file as written, in the viewer.
        name = site.record(label="v1", path="/beta")["name"]
        tab.goto(f"{site.url}/report/{name}")
        tab.get_by_text("beta_work").first.wait_for()

        # Endpoints, then one endpoint's reports merged.
        tab.goto(site.url + "/top")
        tab.locator('tr[data-endpoint="GET /alpha"] a.merge').click()
        tab.wait_for_url(re.compile(r"/merge\?"))
        tab.get_by_text("alpha_work").first.wait_for()
        assert tab.get_by_text("beta_work").count() == 0

        # The comparison: the slower function first.
        tab.goto(site.url + "/diff")
        tab.fill("#diff-a", "label=v1")
        tab.fill("#diff-b", "label=v2")
        tab.fill("#f-path", "^/alpha")
        tab.click("#apply")
        first = tab.locator("#diff tbody tr").first
        first.wait_for()
        assert first.get_attribute("class") == "slower"
        assert "flask_app.py" in first.locator("td.where").inner_text()
        assert float(first.locator("td.delta").inner_text()) > 0

        # A bad value: the message on the page, not a trace.
        tab.goto(site.url + "/")
        tab.fill("#f-min_duration", "soon")
        tab.click("#apply")
        tab.locator("#error").wait_for()
        assert "min duration" in tab.locator("#error").inner_text()
    finally:
        context.close()
    # Nothing refused by the security policy, no script error; but the viewer's web font, from
    # fonts.googleapis.com, is refused on purpose (a report opened must not call elsewhere).
    assert [p for p in problems if "https://fonts.googleapis.com/" not in p] == [], problems
    assert len(problems) <= 3  # at most once per viewer page
