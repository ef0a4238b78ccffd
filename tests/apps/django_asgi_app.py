"""A Django app (tests/apps/django_project.py) served through ``get_asgi_application()``
(``tests.apps.django_asgi_app:application``): a sync view behind a sync middleware, so Django runs
both in its thread pool (asgiref's ``sync_to_async``), away from the request's task.

``GET /report/<n>?rows=R&items=I&burn=S``: the view queries SQLite through the ORM (a recursive CTE
of ``R`` rows, through ``Item.objects.raw``, plus an ordinary filter), renders a template looping
over ``I`` items, and answers with what it measured itself, in seconds (``time.perf_counter``):

* ``X-Sql-Seconds``: time inside the database backend's ``execute`` (summed by an execute wrapper);
* ``X-Orm-Seconds``: the ORM calls as a whole;
* ``X-Template-Seconds``: ``Template.render``;
* ``X-View-Seconds``: the view function, from its first line to its last;
* ``X-Middleware-Seconds``: the middleware's own work (``S`` seconds of CPU in ``middleware_work``).

``GET /fast/<n>`` answers at once. The database is the file named by ``DJANGO_ASGI_APP_DB`` (else one
in a new temporary directory), created and filled at import, in each worker process.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from django.core.asgi import get_asgi_application
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.urls import path

from tests.apps.django_project import configure, create_items

configure(
    __name__,
    f"{__name__}.timing_middleware",
    os.environ.get("DJANGO_ASGI_APP_DB") or os.path.join(tempfile.mkdtemp(), "db.sqlite3"),
)
Item = create_items()

#: A recursive CTE of %s rows, summed: all of SQLite's work happens before the first row comes back,
#: so inside the backend's cursor ``execute``. RawQuerySet needs the primary key among the columns.
COUNTING_SQL = """
WITH RECURSIVE counter(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM counter WHERE x < %s)
SELECT id, name, weight, (SELECT SUM((x * 7) % 13) FROM counter) AS total FROM items WHERE id = 1
"""


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(200))


def middleware_work(seconds: float) -> None:
    burn(seconds)


def timing_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """A sync-only middleware (Django runs it in the thread pool, with the view)."""

    def middleware(request: HttpRequest) -> HttpResponse:
        began = time.perf_counter()
        middleware_work(float(request.GET.get("burn", "0")))
        worked = time.perf_counter() - began
        response = get_response(request)
        response["X-Middleware-Seconds"] = f"{worked:.6f}"
        return response

    return middleware


def report_view(request: HttpRequest, n: int) -> HttpResponse:
    began = time.perf_counter()
    sql_seconds = 0.0

    def timed_execute(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal sql_seconds
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            sql_seconds += time.perf_counter() - t0

    t0 = time.perf_counter()
    with connection.execute_wrapper(timed_execute):
        [counted] = list(Item.objects.raw(COUNTING_SQL, [int(request.GET.get("rows", "100000"))]))
        heavy = Item.objects.filter(weight__gt=50).count()
        items = list(Item.objects.order_by("id"))
    orm_seconds = time.perf_counter() - t0

    template = loader.get_template("rows.html")
    repeat = max(1, int(request.GET.get("items", "300")) // len(items))
    t0 = time.perf_counter()
    html = template.render({"items": items * repeat})
    template_seconds = time.perf_counter() - t0

    response = HttpResponse(f"report {n}: total {counted.total}, heavy {heavy}, {len(html)} bytes\n")
    response["X-Sql-Seconds"] = f"{sql_seconds:.6f}"
    response["X-Orm-Seconds"] = f"{orm_seconds:.6f}"
    response["X-Template-Seconds"] = f"{template_seconds:.6f}"
    response["X-View-Seconds"] = f"{time.perf_counter() - began:.6f}"
    return response


def fast_view(request: HttpRequest, n: int) -> HttpResponse:
    return HttpResponse(f"fast {n}\n")


urlpatterns = [path("report/<int:n>", report_view), path("fast/<int:n>", fast_view)]

application = get_asgi_application()
