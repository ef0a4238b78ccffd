"""A single-file Django app for the integration tests (``tests.apps.django_app:application``)."""

from __future__ import annotations

import time

import django
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="integration-tests-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[],
        MIDDLEWARE=[],
        DATABASES={},
        USE_TZ=True,
    )
    django.setup()

from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path


def django_cpu_work(seconds: float) -> int:
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += sum(i * i for i in range(200))
    return n


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse("django ok")


def work(request: HttpRequest) -> HttpResponse:
    django_cpu_work(float(request.GET.get("s", "0.1")))
    return HttpResponse("worked")


urlpatterns = [path("", index), path("work", work)]

application = get_wsgi_application()
