"""Frameworks other than Flask, unchanged, under a profiled gunicorn."""

from __future__ import annotations

from support import CONFIG_FILE, DJANGO_APP, get, metadata_records, profiling_env, report_functions


def test_django_app(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session,text")
    server = gunicorn("-c", CONFIG_FILE, "-k", "gthread", "--threads", "2", "-w", "1", DJANGO_APP, env=env)
    assert get(server.url + "/") == (200, b"django ok")
    assert get(server.url + "/work?s=0.1") == (200, b"worked")
    assert get(server.url + "/missing")[0] == 404
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert [(r["path"], r["status"]) for r in records] == [("/", 200), ("/work", 200), ("/missing", 404)]
    work = records[1]
    assert work["duration"] >= 0.1
    assert "django_cpu_work" in report_functions(report_dir, work)
    assert "django_cpu_work" in (report_dir / work["files"]["text"]).read_text()
    assert "django_cpu_work" not in report_functions(report_dir, records[0])
