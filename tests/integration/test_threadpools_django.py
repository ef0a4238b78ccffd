"""Django under ASGI (``get_asgi_application()``, ``-k asgi`` and UvicornWorker): a sync view and a
sync middleware run in Django's thread pool (asgiref's ``sync_to_async``), not in the request's
task. The request's report must still show them, timed: the view, Django's template rendering and
SQLite's execution, each within 15 % of what the view measured itself. Both engines.

One server per worker class × engine (a module-scoped fixture sends every request and stops it);
each test checks one thing in its reports.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .threadpool_checks import (
    ASGI_CASES,
    Fn,
    Served,
    assert_timed,
    check_made_by_the_engine,
    check_only_slow_requests_kept,
    fetch,
    finish,
    module_gunicorn,
    skip_unless_worker_exists,
    start,
)

APP = "tests.apps.django_asgi_app:application"
#: Each part of a report request takes tens of ms (more while it is profiled): the SQL (a recursive
#: CTE of ``rows``), the template (``items`` rows) and the middleware (``burn`` seconds of CPU).
REPORT_QUERY = "?rows=150000&items=800&burn=0.06"
REPORTS = 2

VIEW = Fn("report_view", "tests/apps/django_asgi_app.py")
MIDDLEWARE = Fn("middleware_work", "tests/apps/django_asgi_app.py")
TEMPLATE_RENDER = Fn("render", "django/template/base.py", "Template")
SQLITE_EXECUTE = Fn("execute", "django/db/backends/sqlite3/base.py", "SQLiteCursorWrapper")


@pytest.fixture(scope="module", params=ASGI_CASES)
def served(request, tmp_path_factory) -> Iterator[Served]:
    worker, engine = request.param
    skip_unless_worker_exists(worker)
    root = tmp_path_factory.mktemp("django")
    report_dir = root / "reports"
    with module_gunicorn(tmp_path_factory) as factory:
        env = {"DJANGO_ASGI_APP_DB": str(root / "db.sqlite3")}
        server = start(factory, report_dir, ["-k", worker, "-w", "1"], APP, engine, env)
        replies = [fetch(server.url, "/fast/0")]
        for n in range(1, REPORTS + 1):
            replies.append(fetch(server.url, f"/report/{n}{REPORT_QUERY}"))
            replies.append(fetch(server.url, f"/fast/{n}"))
        yield finish(server, engine, report_dir, replies)


def each_report(served: Served) -> Iterator[tuple[str, object]]:
    paths = served.paths("report")
    assert len(paths) == REPORTS
    for path in paths:
        assert served.reply(path).status == 200, served.reply(path)
        yield path, served.session(path)


def test_the_reports_are_made_by_the_engine_asked_for(served):
    check_made_by_the_engine(served)


def test_only_slow_requests_are_kept(served):
    check_only_slow_requests_kept(served)
    for path in served.paths("report"):
        assert served.reply(path).body.startswith(f"report {path.rsplit('/', 1)[1]}: total ".encode())


def test_the_view_is_timed(served):
    for path, session in each_report(served):
        assert_timed(session, served.reply(path).seconds("X-View-Seconds"), VIEW)


def test_template_rendering_is_timed(served):
    for path, session in each_report(served):
        assert_timed(session, served.reply(path).seconds("X-Template-Seconds"), TEMPLATE_RENDER)


def test_sqlite_execution_is_timed(served):
    for path, session in each_report(served):
        assert_timed(session, served.reply(path).seconds("X-Sql-Seconds"), SQLITE_EXECUTE)


def test_the_sync_middleware_is_timed(served):
    for path, session in each_report(served):
        assert_timed(session, served.reply(path).seconds("X-Middleware-Seconds"), MIDDLEWARE)
