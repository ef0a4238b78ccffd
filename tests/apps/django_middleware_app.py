"""A Django project in one module, with gunicorn_pyinstrument.django.ProfilerMiddleware first in its
MIDDLEWARE: its settings (``DJANGO_SETTINGS_MODULE=tests.apps.django_middleware_app``, for
``django-admin runserver``), its URLs and views. ``/alpha`` and ``/beta`` are sync views burning CPU
in functions of their own, ``/async`` an async view, ``/stream`` a streamed response."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path

SECRET_KEY = "integration-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = __name__
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["gunicorn_pyinstrument.django.ProfilerMiddleware"]
DATABASES: dict[str, object] = {}
USE_TZ = True


def burn(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(200))


def alpha_work(seconds: float) -> None:
    burn(seconds)


def beta_work(seconds: float) -> None:
    burn(seconds)


async def async_work(seconds: float) -> None:
    for _ in range(5):
        burn(seconds / 5)
        await asyncio.sleep(0.002)


def stream_chunks(n: int) -> Iterator[bytes]:
    for i in range(n):
        burn(0.01)
        yield f"chunk {i}\n".encode()


def seconds(request: HttpRequest) -> float:
    return float(request.GET.get("s", "0.1"))


def alpha(request: HttpRequest) -> HttpResponse:
    alpha_work(seconds(request))
    return HttpResponse("alpha")


def beta(request: HttpRequest) -> HttpResponse:
    beta_work(seconds(request))
    return HttpResponse("beta")


async def async_view(request: HttpRequest) -> HttpResponse:
    await async_work(seconds(request))
    return HttpResponse("async")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(stream_chunks(int(request.GET.get("n", "10"))), content_type="text/plain")


urlpatterns = [path("alpha", alpha), path("beta", beta), path("async", async_view), path("stream", stream)]
