"""``/static/...``: the scripts and style sheets the pages load, installed with the package.

The charts and flame graphs run in the browser from these files only: the site's own scripts
(``static/*.js``) and the libraries vendored under ``static/vendor/`` (names, versions, licences and
checksums in ``static/VENDORED.md``). Nothing is fetched from anywhere else, at run time or at
install time. The files are listed once, when the module is imported; a request names one of them
by its URL, which is looked up in that list: nothing from the request reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from .response import HTTPError, Response
from .security import FILE_CSP

STATIC = Path(__file__).resolve().parent / "static"
#: What is served, by suffix; anything else in the folder (the licences, VENDORED.md) is not.
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def _listing() -> dict[str, Path]:
    """URL path under /static/ → file, for every servable file of the folder."""
    if not STATIC.is_dir():
        return {}
    return {
        path.relative_to(STATIC).as_posix(): path
        for path in sorted(STATIC.rglob("*"))
        if path.is_file() and path.suffix in TYPES
    }


ASSETS = _listing()


def url(name: str) -> str:
    """The URL of an asset; a name that is not one is a mistake in the page, said at once."""
    if name not in ASSETS:
        raise KeyError(f"no static asset {name!r}")
    return "/static/" + name


def asset_response(parts: list[str]) -> Response:
    """The asset named by the path segments after ``/static/``."""
    name = "/".join(parts)
    path = ASSETS.get(name)
    if path is None:
        raise HTTPError(404, "not found")
    body = path.read_bytes()
    return Response(200, body, content_type=TYPES[path.suffix], csp=FILE_CSP)
