"""The single-file Django project under the apps served through ``get_asgi_application()``
(tests/apps/django_asgi_app.py, and bench/threadpool_django.py): settings with one SQLite database
and a ``rows.html`` template, and an ``items`` table of 300 rows.

An app module calls :func:`configure` with its own name (its ``urlpatterns`` are the URLconf) and
middleware, then :func:`create_items` (Django defines a model only once it is configured), at
import, in each worker process.
"""

from __future__ import annotations

import functools
from typing import Any

import django
from django.conf import settings

#: A row per item: the name through a filter, the weight formatted and compared, the rows alternating.
ROWS_TEMPLATE = (
    "<table>{% for item in items %}"
    "<tr class=\"{% cycle 'odd' 'even' %}\"><td>{{ forloop.counter }}</td>"
    "<td>{{ item.name|upper }}</td><td>{{ item.weight|floatformat:2 }}</td>"
    "<td>{% if item.weight > 50 %}heavy{% else %}light{% endif %}</td></tr>\n"
    "{% endfor %}</table>\n"
)


def configure(urlconf: str, middleware: str, database: str) -> None:
    """Django's settings, once per process: ``urlconf`` the module with the ``urlpatterns``,
    ``middleware`` the dotted name of its one middleware, ``database`` the SQLite file."""
    if settings.configured:
        return
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tests-and-benchmarks-only",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=urlconf,
        INSTALLED_APPS=[],
        MIDDLEWARE=[middleware],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": database}},
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "OPTIONS": {
                    "loaders": [("django.template.loaders.locmem.Loader", {"rows.html": ROWS_TEMPLATE})]
                },
            }
        ],
        USE_TZ=True,
    )
    django.setup()


@functools.cache
def create_items() -> Any:
    """The ``Item`` model, its table made anew in the database and filled with 300 rows."""
    from django.db import connection, models

    class Item(models.Model):
        name = models.CharField(max_length=40)
        weight = models.FloatField()

        class Meta:
            app_label = "django_project"
            db_table = "items"

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS items")
    with connection.schema_editor() as editor:
        editor.create_model(Item)
    Item.objects.bulk_create(Item(name=f"item {i}", weight=(i * 37) % 100) for i in range(1, 301))
    connection.close()  # each thread opens its own connection to the file
    return Item
