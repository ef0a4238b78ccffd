"""The serve page's pictures, in Debian's chromium driven by playwright, on real reports: a Flask
app served by gunicorn under label v1 (alpha_work fast, beta_work slow), then v2 (the other way
round), then in per-worker mode.

Checked: the latency chart has one point per report and a click on a point opens that report; the
flame-graph viewer draws a report, and a merged view, from this server with no request to any
other host; the differential flame graph colours the function that got slower apart from the one
that got faster; the workers' timeline links its windows; no page loads anything from elsewhere.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from support import CONFIG_FILE, FLASK_APP, GunicornFactory, get, profiling_env, wait_for_metadata

from gunicorn_pyinstrument.web import server as web_server

#: (label, settings, requests) of each gunicorn run.
RUNS: list[tuple[str, dict[str, str], list[str]]] = [
    ("v1", {}, ["/alpha?s=0.01", "/beta?s=0.06"] * 2 + ["/error"]),
    ("v2", {}, ["/alpha?s=0.06", "/beta?s=0.01"] * 2),
    ("w", {"MODE": "worker", "FLUSH_INTERVAL": "1"}, ["/alpha?s=0.1", "/sleep?s=0.5"] * 2),
]
REQUESTS = sum(len(r) for label, _, r in RUNS if label != "w")
WAIT_MS = 20_000


class Site:
    def __init__(self, records: list[dict[str, Any]], server: web_server.WebServer) -> None:
        self.records = records
        self.server = server
        self.url = server.url.rstrip("/")

    def requests(self, **match: Any) -> list[dict[str, Any]]:
        return [
            r
            for r in self.records
            if r.get("kind", "request") == "request" and all(r.get(k) == v for k, v in match.items())
        ]

    def windows(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("kind") == "worker"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("visuals")
    (root / "logs").mkdir()
    directory = root / "reports"
    servers = GunicornFactory(root / "logs")
    try:
        for label, settings, requests in RUNS:
            env = profiling_env(directory, FORMATS="session", LABEL=label, **settings)
            # --timeout 2: an idle sync worker beats, and so turns its windows over, every second.
            server = servers("-c", CONFIG_FILE, "-w", "1", "--timeout", "2", FLASK_APP, env=env)
            for target in requests:
                assert get(server.url + target)[0] in (200, 500)
            assert server.stop() == 0
    finally:
        servers.cleanup()
    records = wait_for_metadata(directory, REQUESTS + 1)  # and one window at least
    server = web_server.make_server(str(directory))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield Site(records, server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (make browser installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


class Tab:
    """A browser tab that records every request it makes and every error or refusal it meets."""

    def __init__(self, chromium: Any, site: Site) -> None:
        self.context = chromium.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.site = site
        self.urls: list[str] = []
        self.problems: list[str] = []
        self.page.on("request", lambda request: self.urls.append(request.url))
        self.page.on("pageerror", lambda exc: self.problems.append(str(exc)))
        self.page.on(
            "console",
            lambda msg: self.problems.append(msg.text) if msg.type in ("error", "warning") else None,
        )

    def open(self, target: str, ready: str | None = None) -> Any:
        self.page.goto(self.site.url + target)
        if ready is not None:
            self.page.wait_for_selector(f"{ready}[data-ready]")
            assert self.page.get_attribute(ready, "data-ready") == "1"
        return self.page

    def check_stayed_home(self) -> None:
        """Every request went to this server, and the browser refused nothing and threw nothing."""
        foreign = [u for u in self.urls if not u.startswith(self.site.url + "/")]
        assert foreign == []
        assert self.problems == []


@pytest.fixture
def tab(chromium: Any, site: Site) -> Iterator[Tab]:
    opened = Tab(chromium, site)
    try:
        yield opened
    finally:
        opened.context.close()


def query(**params: str) -> str:
    return "?" + urllib.parse.urlencode(params)


def test_the_chart_has_one_point_per_report_and_a_click_opens_it(tab: Tab, site: Site) -> None:
    page = tab.open("/chart", ready="#chart")
    assert int(page.get_attribute("#chart", "data-points")) == len(site.requests())
    alpha = site.requests(path="/alpha")
    page = tab.open("/chart" + query(endpoint="GET /alpha"), ready="#chart")
    assert int(page.get_attribute("#chart", "data-points")) == len(alpha)
    # The slowest /alpha request: click where the chart drew it.
    slowest = max(alpha, key=lambda r: r["duration"])
    box = page.locator("#chart .u-over").bounding_box()
    x, y = page.evaluate(
        "([t, d]) => { const u = document.getElementById('chart').uplot;"
        " return [u.valToPos(t, 'x'), u.valToPos(d, 'y')]; }",
        [slowest["start"], slowest["duration"]],
    )
    page.mouse.move(box["x"] + x, box["y"] + y)
    assert slowest["path"] in page.inner_text("#chart-tip")
    page.mouse.click(box["x"] + x, box["y"] + y)
    page.wait_for_url(re.compile(r"/report/"))
    assert urllib.parse.unquote(page.url.rsplit("/", 1)[1]) == slowest["name"]
    page.get_by_text("alpha_work").first.wait_for()
    tab.problems = [p for p in tab.problems if "fonts.googleapis.com" not in p]  # pyinstrument's viewer
    tab.urls = [u for u in tab.urls if "fonts.googleapis.com" not in u]  # asked for, and refused
    tab.check_stayed_home()


def frames(page: Any) -> dict[str, dict[str, str]]:
    """The flame graph's frames by function name: their fill and change (the largest of each name)."""
    return page.evaluate(
        "() => { const out = {}; document.querySelectorAll('#flame g.frame').forEach(g => {"
        " const r = g.querySelector('rect'); const w = +r.getAttribute('width'); const n = g.dataset.name;"
        " if (!out[n] || out[n].width < w) out[n] = {fill: r.getAttribute('fill'),"
        " change: g.dataset.change || '', width: w}; }); return out; }"
    )


def test_the_flame_graph_is_drawn_from_this_server_only(tab: Tab, site: Site) -> None:
    record = max(site.requests(path="/beta", label="v1"), key=lambda r: r["duration"])
    page = tab.open(f"/flame/{record['name']}", ready="#flame")
    drawn = frames(page)
    assert "beta_work" in drawn and "alpha_work" not in drawn
    assert any(u.startswith(f"{site.url}/data/flame/") for u in tab.urls)
    # A click on a frame zooms into it: it takes the whole width.
    page.locator('#flame g.frame[data-name="beta_work"]').first.click()
    width = page.evaluate("() => document.querySelector('#flame svg').viewBox.baseVal.width")
    assert frames(page)["beta_work"]["width"] == pytest.approx(width, abs=1)
    # A merged view: every /alpha request of both labels.
    page = tab.open("/flame" + query(endpoint="GET /alpha"), ready="#flame")
    assert "alpha_work" in frames(page) and "beta_work" not in frames(page)
    data = json.loads(get(site.url + "/data/flame" + query(endpoint="GET /alpha"))[1])
    assert data["reports"] == [len(site.requests(path="/alpha"))]
    tab.check_stayed_home()


def test_the_differential_flame_graph_colours_slower_and_faster_apart(tab: Tab, site: Site) -> None:
    page = tab.open("/diff" + query(a="label=v1", b="label=v2"), ready="#flame")
    page.wait_for_selector("#distribution[data-ready]")
    under: dict[str, list[tuple[str, str]]] = {"alpha_work": [], "beta_work": []}
    script = (
        "gs => gs.map(g => [g.dataset.path, g.dataset.change || '',"
        " g.querySelector('rect').getAttribute('fill')])"
    )
    for path, change, fill in page.eval_on_selector_all("#flame g.frame", script):
        for function, found in under.items():
            if f";{function};" in path:
                found.append((change, fill))
    # What alpha_work calls got slower (its self time is in burn and below), beta_work's faster.
    assert {c for c, _ in under["alpha_work"]} >= {"slower"} and "faster" not in {
        c for c, _ in under["alpha_work"]
    }
    assert {c for c, _ in under["beta_work"]} >= {"faster"} and "slower" not in {
        c for c, _ in under["beta_work"]
    }
    red = {fill for change, fill in under["alpha_work"] if change == "slower"}
    blue = {fill for change, fill in under["beta_work"] if change == "faster"}
    assert red and blue and not red & blue
    hue = re.compile(r"hsl\((\d+),")
    assert all(int(hue.match(fill).group(1)) < 30 for fill in red)  # red
    assert all(180 < int(hue.match(fill).group(1)) < 260 for fill in blue)  # blue
    beta = frames(page)["beta_work"]
    # The table stays beside it, function by function.
    assert set(page.locator("#diff td.name").all_inner_texts()) >= {"alpha_work", "beta_work", "burn"}
    # Sized by A instead: beta_work (slow in v1) grows wider.
    page.select_option("#flame-side", "0")
    assert frames(page)["beta_work"]["width"] > beta["width"]
    tab.check_stayed_home()


def test_the_workers_timeline_links_each_window(tab: Tab, site: Site) -> None:
    windows = site.windows()
    assert windows
    page = tab.open("/workers")
    bars = page.locator("svg#workers a.window")
    assert bars.count() == len(windows)
    shares = [
        float(b) for b in page.eval_on_selector_all("svg#workers a.window", "l => l.map(a => a.dataset.busy)")
    ]
    assert any(0 < s < 1 for s in shares), shares  # the requests: busy for part of a window
    bars.first.click()
    page.wait_for_url(re.compile(r"/report/"))
    assert urllib.parse.unquote(page.url.rsplit("/", 1)[1]) in {w["name"] for w in windows}
    tab.problems = [p for p in tab.problems if "fonts.googleapis.com" not in p]
    tab.urls = [u for u in tab.urls if "fonts.googleapis.com" not in u]
    tab.check_stayed_home()


def test_no_page_loads_anything_from_elsewhere(tab: Tab, site: Site) -> None:
    name = site.requests(path="/alpha")[0]["name"]
    for target, ready in [
        ("/", None),
        ("/top", None),
        ("/chart", "#chart"),
        (f"/flame/{name}", "#flame"),
        ("/flame" + query(label="v2"), "#flame"),
        ("/diff" + query(a="label=v1", b="label=v2"), "#flame"),
        ("/workers", None),
    ]:
        tab.open(target, ready)
    assert any("/static/vendor/uplot/" in u for u in tab.urls)
    tab.check_stayed_home()


def test_the_data_routes_check_what_they_are_asked(site: Site) -> None:
    points = json.loads(get(site.url + "/data/points" + query(label="v2"))[1])
    assert points["count"] == len(site.requests(label="v2"))
    assert sorted(points["points"]["name"]) == sorted(r["name"] for r in site.requests(label="v2"))
    name = site.requests(path="/beta")[0]["name"]
    tree = json.loads(get(f"{site.url}/data/flame/{name}")[1])
    assert tree["reports"] == [1] and tree["root"]["c"]
    for target, status in [
        ("/data/points?status=abc", 400),
        ("/data/points?lable=v1", 400),
        ("/data/flame?label=v9", 404),
        ("/data/flame/..%2F..%2Fetc%2Fpasswd", 404),
        (f"/data/flame/{name}.pyisession", 404),
        ("/data/nothing", 404),
        ("/flame/..%2Fsecret", 404),
        ("/static/..%2F__init__.py", 404),
        ("/static/vendor/uplot/LICENSE", 404),
        ("/workers?limit=0", 400),
    ]:
        assert get(site.url + target)[0] == status, target
    status, body = get(site.url + "/static/vendor/uplot/uPlot.iife.min.js")
    assert status == 200 and body.startswith(b"/*! https://github.com/leeoniya/uPlot (v1.6.32) */")
