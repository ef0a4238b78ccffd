"""`make screenshots`: the pictures of README.md and docs/cli.md, taken from the demo's reports.

Runs the demo (demo.py: the sample Flask app under gunicorn with profiling on) with more requests
than `make demo` sends, so the chart has points to show, then serves its reports with
`gunicorn-pyinstrument serve`'s server and takes the pages in Debian's chromium (playwright):

- docs/images/list.png: the reports, filtered;
- docs/images/chart.png: latency over time of GET /compute;
- docs/images/flame.png: the slowest request's flame graph;
- docs/images/diff.png: GET /compute before the release against after: durations, the
  differential flame graph and the table.

Run from anywhere with the project's virtualenv: ``.venv/bin/python sample_configs/screenshots.py``.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import demo

from gunicorn_pyinstrument.catalog import Catalog, Query
from gunicorn_pyinstrument.reading.display import iso
from gunicorn_pyinstrument.web.server import make_server

IMAGES = demo.ROOT / "docs" / "images"
#: (target, times): a release half-way through makes GET /compute slower (a bigger n), and the
#: pictures tell that story: the chart steps up, the comparison of before and after shows where.
BEFORE = (10000, 15000, 20000)
AFTER = (30000, 40000, 50000)
REQUESTS = [
    (target, 1)
    for sizes in (BEFORE, AFTER)
    for round_ in range(4)
    for target in (
        *(f"/compute?n={n}" for n in sizes),
        "/",
        f"/slow?s={0.1 + 0.05 * round_:.2f}",
        "/stream",
        *(["/error"] if round_ == 2 else []),
    )
]
VIEWPORT = {"width": 1100, "height": 720}


def run_demo() -> None:
    """The demo, quietly, with this script's requests; its output shown only if it fails."""
    demo.REQUESTS = REQUESTS
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        status = demo.main()
    if status != 0:
        print(output.getvalue(), file=sys.stderr)
        raise SystemExit(f"the demo failed with status {status}")


def shoot(
    page: Any,
    url: str,
    path: Path,
    ready: str | None = None,
    height: int | None = None,
    width: int = 0,
    hover: str | None = None,
) -> None:
    """The page as the viewport shows it (``width`` wide), or its first ``height`` pixels; the
    mouse over ``hover`` (a selector), or away."""
    width = width or VIEWPORT["width"]
    page.set_viewport_size({"width": width, "height": VIEWPORT["height"]})
    page.goto(url)
    if ready is not None:
        page.wait_for_selector(f"{ready}[data-ready]", timeout=30_000)
    if hover is not None:
        page.locator(hover).first.hover()
    else:
        page.mouse.move(0, 0)
    clip = {"x": 0, "y": 0, "width": width, "height": height} if height else None
    page.screenshot(path=str(path), full_page=height is not None, clip=clip)
    print(f"  {demo.shown(path)}: {path.stat().st_size / 1000:.0f} KB")


def main() -> int:
    chromium = shutil.which("chromium")
    if chromium is None:
        print("Debian's chromium is not installed (make browser)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    print(f"Running the demo with {len(REQUESTS)} requests ...", flush=True)
    run_demo()
    with Catalog(str(demo.REPORTS)) as cat:
        computes = cat.entries(Query(endpoint="GET /compute"), order="time")
        slowest = max(cat.entries(Query(kind="request")), key=lambda e: e.duration).name
    # The release: between the last request before it and the first after it (as many each side).
    middle = len(computes) // 2
    release = iso((computes[middle - 1].start + computes[middle].start) / 2).replace(" ", "T") + "Z"
    IMAGES.mkdir(parents=True, exist_ok=True)
    server = make_server(str(demo.REPORTS))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = server.url.rstrip("/")
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport=VIEWPORT)
            print("Taking the pages:")
            shoot(page, url + "/?path=%5E%2Fcompute&limit=8", IMAGES / "list.png", height=520, width=1440)
            shoot(page, url + "/chart?endpoint=GET+%2Fcompute", IMAGES / "chart.png", "#chart")
            shoot(
                page,
                f"{url}/flame/{urllib.parse.quote(slowest)}",
                IMAGES / "flame.png",
                "#flame",
                400,
                hover='#flame g.frame[data-name="count_primes"]',
            )
            sides = {
                "a": f"until={release}",
                "b": f"since={release}",
                "endpoint": "GET /compute",
                "limit": "6",
            }
            shoot(page, url + "/diff?" + urllib.parse.urlencode(sides), IMAGES / "diff.png", "#flame", 1100)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
