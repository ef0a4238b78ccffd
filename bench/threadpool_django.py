"""A single-file Django project through ``get_asgi_application()`` (``threadpool_django:application``),
mirroring tests/apps/django_asgi_app.py: a sync view behind a sync middleware, which Django runs in
asgiref's thread pool (``sync_to_async``), away from the request's task.

``GET /work``: a few milliseconds of a typical view's work: three ORM queries on SQLite (a filter
counted, 60 rows fetched, an aggregate), the rows as dicts serialized to JSON, and a Django template
of 40 rows. ``/ping`` is the trivial endpoint. The database is ``bench-<pid>.sqlite3`` in the server's
working directory, created and filled at import, in each worker.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmarks-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[f"{__name__}.header_middleware"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": os.path.join(os.getcwd(), f"bench-{os.getpid()}.sqlite3"),
            }
        },
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "loaders": [
                        (
                            "django.template.loaders.locmem.Loader",
                            {
                                "rows.html": "<table>{% for item in items %}"
                                "<tr class=\"{% cycle 'odd' 'even' %}\"><td>{{ forloop.counter }}</td>"
                                "<td>{{ item.name|title }}</td><td>{{ item.weight|floatformat:2 }}</td>"
                                "<td>{% if item.weight > 50 %}heavy{% else %}light{% endif %}</td></tr>\n"
                                "{% endfor %}</table>\n"
                            },
                        )
                    ]
                },
            }
        ],
        USE_TZ=True,
    )
    django.setup()

from django.core.asgi import get_asgi_application
from django.db import connection, models
from django.db.models import Avg
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import loader
from django.urls import path


class Item(models.Model):
    name = models.CharField(max_length=40)
    weight = models.FloatField()

    class Meta:
        app_label = "threadpool_bench"
        db_table = "items"


def _create_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS items")
    with connection.schema_editor() as editor:
        editor.create_model(Item)
    Item.objects.bulk_create(Item(name=f"item number {i}", weight=(i * 37) % 100) for i in range(1, 301))
    connection.close()  # each thread opens its own connection to the file


_create_database()


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
