"""The local web page: ``gunicorn-pyinstrument serve``.

A small read-only site over the catalog, with the standard library's HTTP server only:

- ``/``: the reports, filtered (the query keys of ``catalog.QUERY_KEYS``), sorted, paged
  (``pages/report_list.py``);
- ``/report/NAME``: pyinstrument's own HTML viewer for one report, and ``/file/NAME/FORMAT``: one
  of the report's files, as a download (``pages/report.py``);
- ``/top``: time per endpoint, each linking to ``/merge``, the endpoint's reports merged into one
  viewer (``pages/top.py``, ``pages/merge.py``);
- ``/diff?a=label=v1&b=label=v2``: two selections compared: their durations' distributions, a
  differential flame graph and the table of functions (``pages/diff.py``);
- ``/chart``: latency over time, a point per report with per-slice p50 and p95, its data at
  ``/data/points`` (``pages/chart.py``, ``timeline.py``);
- ``/flame/NAME`` and ``/flame?...``: a report's or a selection's flame graph, its data at
  ``/data/flame/...`` (``pages/flame.py``, ``flamegraph.py``);
- ``/workers``: per-worker windows on a timeline, busy against idle (``pages/workers.py``,
  ``busy.py``);
- ``/static/...``: the scripts the pages run and the libraries vendored with them, installed with
  the package (``assets.py``, ``static/VENDORED.md``).

Only what the catalog lists is ever read: a name from the request is checked, looked up in the
catalog, and the file names come from the report's metadata record, never from the request; a
static file is looked up by name in a list made when the package is imported. The server binds
127.0.0.1 by default and, bound to a loopback address, answers only requests that name a
loopback host (a web page elsewhere cannot reach it by rebinding a DNS name to 127.0.0.1). Every
page is sent with a Content-Security-Policy: the site's own pages run only its own script files
(never an inline script), and the viewer runs only pyinstrument's two inline scripts (checked,
then allowed by their hashes). Nothing is loaded from elsewhere: the viewer's web font (from
Google Fonts) is refused, and it shows in the browser's own fonts. Both are in ``security.py``.

Each request opens its own Catalog (sqlite3 connections are not shared between threads), which
brings the index up to date first, so new reports appear on the next page load (``server.py``).
"""

from .server import WebServer, make_server, serve

__all__ = ["WebServer", "make_server", "serve"]
