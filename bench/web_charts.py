"""The serve page's pictures: how fast do they draw in a browser on 10,000 reports?

Generates 10,000 reports of the shop API (synthetic.py, as ``make bench-catalog`` does), serves
them with ``gunicorn-pyinstrument serve``'s server, and opens in Debian's chromium (playwright):

- ``/chart``: every request report as a point, with the percentile lines. Timed in the page, to
  uPlot's first drawing: from the page's navigation (``data-page-ms``: the page, its scripts, the
  data's request, uPlot; target: under 1 s), from the data's request, and the drawing alone.
- ``/flame?label=...``: 1,000 reports' sessions merged into one flame graph. The server's time to
  build the tree (the data request) and the browser's time to draw it, with its frame count.

Also prints the size of each asset the pages load. ``make bench-web``; ``--rounds 3`` for a quick
look; ``--keep DIR`` keeps the generated reports to reuse them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

import synthetic
from harness.table import loadavg, log, log_start, table, verdict
from synthetic import MERGE_LABEL

from gunicorn_pyinstrument.web import assets
from gunicorn_pyinstrument.web.server import make_server

REPORTS = 10_000
TARGET_MS = 1000.0
#: A large tree drawn by the flame-graph viewer: this many frames, 4 callees each, in the page.
LARGE_TREE = 20_000
DRAW_LARGE = """(count) => {
  let made = 0;
  const grow = (depth) => {
    const node = {n: "f" + made, f: 0, l: made, k: made % 3 ? "app" : "lib", t: [0], s: [1e-4], c: []};
    made++;
    if (depth < 7) for (let i = 0; i < 4 && made < count; i++) node.c.push(grow(depth + 1));
    node.t[0] = node.s[0] + node.c.reduce((sum, c) => sum + c.t[0], 0);
    return node;
  };
  const data = {sides: 1, reports: [1], files: ["app.py"], root: grow(0)};
  const element = document.createElement("div");
  element.className = "flamegraph";
  document.body.appendChild(element);
  const t0 = performance.now();
  new FlameGraph(element, data).render();
  return [performance.now() - t0, element.querySelectorAll("g.frame").length];
}"""


def timed_get(url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        size = len(response.read())
    return (time.perf_counter() - t0) * 1000, size


def open_and_wait(page: object, url: str, selector: str) -> dict[str, str]:
    page.goto(url)  # type: ignore[attr-defined]
    page.wait_for_selector(f"{selector}[data-ready]", timeout=120_000)  # type: ignore[attr-defined]
    return page.eval_on_selector(selector, "e => Object.assign({}, e.dataset)")  # type: ignore[attr-defined]


def row(what: str, times: list[float], size: str = "", target: str = "-", result: str = "-") -> list[str]:
    return [what, f"{statistics.median(times):.0f}", f"{max(times):.0f}", size, target, result]


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=7, help="page loads of each; default 7")
    p.add_argument("--keep", metavar="DIR", help="generate the reports in DIR and keep them, to reuse them")
    args = p.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("Debian's chromium is not installed (make browser)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    log_start()
    base = tempfile.mkdtemp(prefix="gpi-bench-web-")
    directory = os.path.abspath(args.keep) if args.keep else os.path.join(base, "reports")
    server = None
    try:
        if synthetic.prepare(directory, REPORTS) is None:
            return 2
        server = make_server(directory)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = server.url.rstrip("/")
        timed_get(url + "/data/points")  # the index, built once
        merged = "/flame?" + urllib.parse.urlencode({"label": MERGE_LABEL})
        data_ms = [timed_get(url + "/data/points") for _ in range(3)]
        flame_data = [timed_get(url + "/data" + merged) for _ in range(3)]
        pages, totals, draws, flame_loads, flame_draws = [], [], [], [], []
        points = frames = ""
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            for _ in range(args.rounds):
                state = open_and_wait(page, url + "/chart", "#chart")
                pages.append(float(state["pageMs"]))
                totals.append(float(state["totalMs"]))
                draws.append(float(state["renderMs"]))
                points = state["points"]
            large = []
            for _ in range(max(3, args.rounds // 2)):
                state = open_and_wait(page, url + merged, "#flame")
                flame_loads.append(float(state["renderMs"]))
                flame_draws.append(float(state["drawMs"]))
                frames = state["frames"]
                large.append(page.evaluate(DRAW_LARGE, LARGE_TREE))
            browser.close()
        chart_ms = statistics.median(pages)
        log()
        log(f"{REPORTS:,} reports; chromium {args.rounds} page loads; milliseconds, median (max):")
        points_size = f"{data_ms[0][1] / 1e6:.2f} MB"
        flame_size = f"{flame_data[0][1] / 1e3:.0f} KB"
        target = f"< {TARGET_MS:g}"
        table(
            ("what", "median ms", "max ms", "size", "target", "result"),
            [
                row("/data/points (server: catalog + JSON)", [t for t, _ in data_ms], points_size),
                row(
                    f"/chart: opened to drawn ({points} points)",
                    pages,
                    "",
                    target,
                    verdict(chart_ms < TARGET_MS),
                ),
                row("/chart: data fetched and drawn", totals),
                row("/chart: uPlot drawing alone", draws),
                row("/data/flame: 1,000 sessions merged (server)", [t for t, _ in flame_data], flame_size),
                row("/flame: data fetched and drawn", flame_loads),
                row(f"/flame: drawing alone ({frames} frames)", flame_draws),
                row(f"flame.js: {LARGE_TREE:,} frames ({large[0][1]:,} drawn)", [t for t, _ in large]),
            ],
        )
        log()
        log("Assets (bytes as served):")
        table(
            ("asset", "bytes"), [(name, f"{path.stat().st_size:,}") for name, path in assets.ASSETS.items()]
        )
        log(f"{verdict(chart_ms < TARGET_MS)}: /chart on {REPORTS:,} reports = {chart_ms:.0f} ms median")
        log(f"load average after: {loadavg()}")
        return 0 if chart_ms < TARGET_MS else 1
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        shutil.rmtree(base, ignore_errors=True)
        if args.keep:
            synthetic.remove_added(directory)


if __name__ == "__main__":
    sys.exit(main())
