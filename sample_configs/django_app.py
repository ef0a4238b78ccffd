"""A single-file Django project, to profile a Django app with no change to it.

From the repository root:

    GUNICORN_PYINSTRUMENT=1 gunicorn -c python:gunicorn_pyinstrument.config \
        sample_configs.django_app:application

| endpoint   | what it does                                          |
|------------|-------------------------------------------------------|
| `/`        | renders a template with a few hundred rows            |
| `/compute` | pure-Python work (primes) returned as JSON            |
| `/slow`    | waits on a simulated slow backend (`time.sleep`)      |
| `/error`   | raises `ValueError` (Django answers 500)              |
| `/stream`  | a `StreamingHttpResponse`, computed as it is sent     |
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        # A sample: set DJANGO_SECRET_KEY for anything else.
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "sample-only-not-secret"),
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        USE_TZ=True,
    )
    django.setup()

# Imported after settings.configure(): some of these read the settings.
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.template import engines
from django.urls import path

ROWS_TEMPLATE = engines["django"].from_string(
    "<table>{% for row in rows %}<tr><td>{{ row.name|title }}</td><td>{{ row.score|floatformat:2 }}</td>"
    "</tr>{% endfor %}</table>"
)


def count_primes(limit: int) -> int:
    count = 0
    for n in range(2, limit):
        if all(n % d for d in range(2, int(n**0.5) + 1)):
            count += 1
    return count


def query_slow_backend(seconds: float) -> dict[str, float]:
    """Stands for a database or HTTP call: the worker waits and uses no CPU."""
    time.sleep(seconds)
    return {"waited": seconds}


def index(request: HttpRequest) -> HttpResponse:
    rows = [{"name": f"item number {i}", "score": i / 7} for i in range(500)]
    return HttpResponse(ROWS_TEMPLATE.render({"rows": rows}, request))


def compute(request: HttpRequest) -> JsonResponse:
    limit = min(int(request.GET.get("n", "40000")), 500_000)
    return JsonResponse({"limit": limit, "primes": count_primes(limit)})


def slow(request: HttpRequest) -> JsonResponse:
    return JsonResponse(query_slow_backend(min(float(request.GET.get("s", "0.3")), 5.0)))


def error(request: HttpRequest) -> HttpResponse:
    raise ValueError("this endpoint always fails")


def render_rows(rows: int) -> Iterator[str]:
    for i in range(rows):
        yield f"row {i}: {count_primes(3_000 + 100 * i)} primes\n"


def stream(request: HttpRequest) -> StreamingHttpResponse:
    rows = min(int(request.GET.get("rows", "20")), 1_000)
    return StreamingHttpResponse(render_rows(rows), content_type="text/plain")


urlpatterns = [
    path("", index),
    path("compute", compute),
    path("slow", slow),
    path("error", error),
    path("stream", stream),
]

application = get_wsgi_application()
