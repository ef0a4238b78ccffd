"""The server: one thread per connection, each request routed to its page with its own Catalog
(sqlite3 connections are not shared between threads; opening it brings the index up to date, so
new reports appear on the next page load), every answer sent with the security headers.

:func:`serve` is ``gunicorn-pyinstrument serve``; :func:`make_server` is the same server for tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import socketserver
import sys
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

from ..catalog import Catalog, CatalogError, Query
from ..reading.display import PROG
from .assets import asset_response
from .pages.chart import chart_page, points_data
from .pages.diff import diff_page
from .pages.flame import flame_report_data, flame_report_page, flame_selection_data, flame_selection_page
from .pages.merge import merge_page
from .pages.report import file_response, report_page
from .pages.report_list import list_page
from .pages.top import top_page
from .pages.workers import workers_page
from .request import parse_params, split_target
from .response import HTTPError, Response, error_response
from .security import SECURITY_HEADERS, host_allowed

#: Idle keep-alive connections are closed after this many seconds (each holds a thread).
IDLE_SECONDS = 30

Page = Callable[[Catalog, Mapping[str, str], Query], Response]
#: The pages with the filter form, by the first (and only) segment of their path.
PAGES: dict[str, Page] = {
    "": list_page,
    "top": top_page,
    "merge": merge_page,
    "diff": diff_page,
    "chart": chart_page,
    "workers": workers_page,
    "flame": flame_selection_page,
}
#: The pages' data (``/data/NAME?selection``), read by their scripts.
DATA: dict[str, Page] = {"points": points_data, "flame": flame_selection_data}
#: The pages of one report, by the first segment of ``/ROUTE/NAME``.
REPORT_PAGES: dict[str, Callable[[Catalog, str], Response]] = {
    "report": report_page,
    "flame": flame_report_page,
}


class WebServer(ThreadingHTTPServer):
    """The page's server: one thread per connection, nothing shared between them but settings."""

    daemon_threads = True  # a browser's idle keep-alive connection never holds up shutdown

    def __init__(self, address: tuple[str, int], directory: str, query: Query) -> None:
        self.directory = directory
        self.base_query = query
        self.host = address[0]
        if ":" in self.host:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's fully qualified name: a DNS query we need not wait for.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.host
        self.server_port = int(self.server_address[1])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # An error outside the request handler proper (a connection reset mid-read): one line.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            log(f"error on a connection from {client_address[0]}: {one_line(exc)}")


def one_line(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def log(message: str) -> None:
    print(f"{PROG} serve: {message}", file=sys.stderr, flush=True)


class Handler(BaseHTTPRequestHandler):
    server: WebServer
    protocol_version = "HTTP/1.1"
    # Answers to requests too malformed to have a version still get a status line (HTTP/0.9 has none).
    default_request_version = "HTTP/1.0"
    server_version = "gunicorn-pyinstrument"
    timeout = IDLE_SECONDS

    def version_string(self) -> str:
        return self.server_version  # no Python version in the Server header

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def _not_allowed(self) -> None:
        self.close_connection = True  # the request's body, if any, is never read
        response = error_response(405, f"method {self.command} not allowed: this page is read-only")
        response.headers["Allow"] = "GET, HEAD"
        self._send(response, head=False)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no line per request (errors are logged by :meth:`_handle`)."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The server's own refusals (a malformed request line, headers too large, an unknown
        method) as the site's error page, with its headers."""
        self.close_connection = True
        try:
            text = message or HTTPStatus(code).description or HTTPStatus(code).phrase
        except ValueError:
            text = message or "error"
        self._send(error_response(code, text), head=self.command == "HEAD")

    def _handle(self, head: bool) -> None:
        if (
            self.headers.get("Content-Length", "0").strip() not in ("", "0")
            or "Transfer-Encoding" in self.headers
        ):
            self.close_connection = True  # a body we do not read must not be taken for a request
        try:
            response = self._dispatch()
        except HTTPError as exc:
            response = error_response(exc.status, exc.message)
        except CatalogError as exc:  # the directory is gone or unreadable: say which
            log(f"error in {self.command} {self.path[:200]!r}: {exc}")
            response = error_response(500, str(exc))
        except Exception as exc:
            log(f"error in {self.command} {self.path[:200]!r}: {one_line(exc)}")
            response = error_response(500, "internal error (logged on the server's standard error)")
        self._send(response, head)

    def _dispatch(self) -> Response:
        if not host_allowed(self.headers.get("Host"), self.server.host):
            raise HTTPError(400, "this server answers only to localhost and loopback addresses")
        parts, raw_query = split_target(self.path)
        route = parts[0]
        if len(parts) == 1 and route in PAGES:
            params = parse_params(raw_query)
            with Catalog(self.server.directory) as cat:
                return PAGES[route](cat, params, self.server.base_query)
        if route in REPORT_PAGES and len(parts) == 2:
            with Catalog(self.server.directory) as cat:
                return REPORT_PAGES[route](cat, parts[1])
        if route == "data" and len(parts) == 2 and parts[1] in DATA:
            params = parse_params(raw_query)
            with Catalog(self.server.directory) as cat:
                return DATA[parts[1]](cat, params, self.server.base_query)
        if route == "data" and parts[1:2] == ["flame"] and len(parts) == 3:
            with Catalog(self.server.directory) as cat:
                return flame_report_data(cat, parts[2])
        if route == "static":
            return asset_response(parts[1:])
        if route == "file" and len(parts) == 3:
            with Catalog(self.server.directory) as cat:
                return file_response(cat, parts[1], parts[2])
        raise HTTPError(404, "not found")

    def _send(self, response: Response, head: bool) -> None:
        try:
            self.send_response(response.status)
            length = response.length if response.file is not None else len(response.body)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(length))
            self.send_header("Content-Security-Policy", response.csp)
            for name, value in (SECURITY_HEADERS | response.headers).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if head:
                return
            if response.file is not None:
                shutil.copyfileobj(response.file, self.wfile)
            else:
                self.wfile.write(response.body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away: nothing to tell it
        finally:
            if response.file is not None:
                response.file.close()


def make_server(
    directory: str, host: str = "127.0.0.1", port: int = 0, query: Query | None = None
) -> WebServer:
    """A server for the reports of ``directory``, bound and listening (port 0: any free port),
    not yet serving: call ``serve_forever()`` (in a thread, for tests), then ``shutdown()`` and
    ``server_close()``. Raises CatalogError if the directory cannot be read."""
    directory = os.path.abspath(directory)
    Catalog(directory).close()  # a missing directory is said now, in one line, not on every page
    return WebServer((host, port), directory, query or Query())


def serve(directory: str, host: str, port: int, query: Query, out: IO[str]) -> None:
    """Serve the page until Ctrl-C."""
    try:
        server = make_server(directory, host, port, query)
    except OSError as exc:
        print(f"{PROG}: error: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        raise SystemExit(2) from None
    with server:
        print(f"serving {server.directory} at {server.url} (Ctrl-C to stop)", file=out, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
