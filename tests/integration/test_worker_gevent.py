"""The gevent worker: concurrent requests interleave as greenlets in one thread, profiled through
gunicorn's request hooks in pyinstrument's strict mode."""

from __future__ import annotations

from support import CONFIG_FILE, get, load_session, metadata_records, profiling_env, report_functions

from .worker_checks import (
    WSGI_ANSWERS,
    assert_isolated,
    check_concurrent_requests_errors_and_streams,
    check_token_trigger,
    send_concurrent,
)

INTERLEAVED_APP = "tests.apps.interleaved_app:app"
APP = "tests.apps.streaming_app:app"  # the interleaved app plus /stream
WORKER = ["-k", "gevent", "--worker-connections", "50", "-w", "1"]
WORKER_CLASS = "GeventWorker"
TOKEN = "gevent-token-0123456789"
OUT_OF_CONTEXT = "[out-of-context]"

# A user's config that monkey-patches at its very top, before the plugin imports pyinstrument.
PATCHING_CONFIG = """
from gevent import monkey

monkey.patch_all()
"""


def test_concurrent_requests_errors_and_streams(gunicorn, report_dir):
    server = gunicorn("-c", CONFIG_FILE, *WORKER, APP, env=profiling_env(report_dir, FORMATS="session"))
    records = check_concurrent_requests_errors_and_streams(server, report_dir, WORKER_CLASS, WSGI_ANSWERS)
    for record in records:
        assert load_session(report_dir / record["files"]["session"]).sample_count == record["samples"]


def test_token_trigger(gunicorn, report_dir):
    env = profiling_env(report_dir, FORMATS="session", TOKEN=TOKEN, SAMPLE_RATE="0")
    server = gunicorn("-c", CONFIG_FILE, *WORKER, INTERLEAVED_APP, env=env)
    check_token_trigger(server, report_dir, TOKEN, WORKER_CLASS, WSGI_ANSWERS)


def test_spawned_greenlets_are_not_attributed_to_the_request(gunicorn, report_dir):
    server = gunicorn(
        "-c", CONFIG_FILE, *WORKER, INTERLEAVED_APP, env=profiling_env(report_dir, FORMATS="session")
    )
    assert get(server.url + "/spawn?s=0.1") == (200, b"/spawn done\n")
    assert server.stop() == 0
    [record] = metadata_records(report_dir)
    assert (record["path"], record["status"]) == ("/spawn", 200)
    assert record["duration"] >= 0.1
    session = load_session(report_dir / record["files"]["session"])
    # A greenlet the request spawns starts with an empty context and is not in the report; the
    # request's wait for it is, where it waited: under the join, not as [out-of-context].
    assert "spawned_work" not in report_functions(report_dir, record)
    waited = sum(t for stack, t in session.frame_records if "spawning" in [f.split("\x00")[0] for f in stack])
    assert waited >= 0.1 * 0.85
    assert OUT_OF_CONTEXT not in report_functions(report_dir, record)


def test_config_patching_before_the_plugin_still_isolates(gunicorn, tmp_path, report_dir):
    base = tmp_path / "patching_config.py"
    base.write_text(PATCHING_CONFIG)
    env = profiling_env(report_dir, FORMATS="session", BASE_CONFIG=str(base))
    server = gunicorn("-c", CONFIG_FILE, *WORKER, INTERLEAVED_APP, env=env)
    send_concurrent(server, WSGI_ANSWERS)
    assert server.stop() == 0
    assert_isolated(report_dir, metadata_records(report_dir), WORKER_CLASS)
