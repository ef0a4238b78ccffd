"""A Django app through ``get_asgi_application()`` (``threadpool_django:application``), on the
project of tests/apps/django_asgi_app.py (tests/apps/django_project.py: its settings, template and
table): a sync view behind a sync middleware, which Django runs in asgiref's thread pool
(``sync_to_async``), away from the request's task.

``GET /work``: a few milliseconds of a typical view's work: three ORM queries on SQLite (a filter
counted, 60 rows fetched, an aggregate), the rows as dicts serialized to JSON, and a Django template
of 40 rows. ``/ping`` is the trivial endpoint. The database is ``bench-<pid>.sqlite3`` in the server's
working directory, created and filled at import, in each worker.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable

from django.core.asgi import get_asgi_application
from django.db.models import Avg
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.urls import path
from harness import ROOT

sys.path.insert(0, ROOT)  # gunicorn's --pythonpath is bench/; the project is under tests/apps
from tests.apps.django_project import configure, create_items

configure(
    __name__, f"{__name__}.header_middleware", os.path.join(os.getcwd(), f"bench-{os.getpid()}.sqlite3")
)
Item = create_items()


def header_middleware(get_response: Callable[[HttpRequest], HttpResponse]) -> Callable[..., HttpResponse]:
    """A sync-only middleware: Django runs it in the thread pool, with the view."""

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response["X-Bench"] = "1"
        return response

    return middleware


def work_view(request: HttpRequest) -> HttpResponse:
    heavy = Item.objects.filter(weight__gt=50).count()
    items = list(Item.objects.filter(id__gt=20).order_by("name")[:60])
    mean = Item.objects.aggregate(mean=Avg("weight"))["mean"]
    rows = [{"id": i.id, "name": i.name, "weight": i.weight, "tags": [f"t{i.id % 7}", "x"]} for i in items]
    payload = json.dumps(rows, sort_keys=True)
    html = loader.get_template("rows.html").render({"items": items[:40]})
    return JsonResponse({"heavy": heavy, "mean": mean, "bytes": len(payload), "html": len(html)})


def ping_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [path("work", work_view), path("ping", ping_view)]

application = get_asgi_application()
