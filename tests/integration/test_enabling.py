"""Profiling is off unless switched on, and each documented way of switching it on produces reports."""

from __future__ import annotations

import json

import pytest
from support import (
    CONFIG_FILE,
    CONFIG_MODULE,
    ENV_PREFIX,
    FLASK_APP,
    by_path,
    get,
    metadata_records,
    profiling_env,
    report_functions,
)


@pytest.mark.parametrize("switch", [None, "0", "off"])
def test_off_by_default_writes_nothing(gunicorn, tmp_path, switch):
    reports = tmp_path / "not-created"
    env = {f"{ENV_PREFIX}_DIR": str(reports)}
    if switch is not None:
        env[ENV_PREFIX] = switch
    server = gunicorn("-c", CONFIG_FILE, "-w", "1", FLASK_APP, env=env)

    assert get(server.url + "/") == (200, b"ok")
    assert get(server.url + "/alpha?s=0.02") == (200, b"alpha")
    assert server.stop() == 0

    assert not reports.exists()
    assert "gunicorn-pyinstrument" not in server.log


@pytest.mark.parametrize("config", [CONFIG_FILE, CONFIG_MODULE], ids=["config-file", "python-module"])
def test_config_module_enables_profiling(gunicorn, report_dir, config):
    server = gunicorn("-c", config, "-w", "1", FLASK_APP, env=profiling_env(report_dir, FORMATS="session"))
    assert get(server.url + "/alpha?s=0.05") == (200, b"alpha")
    assert server.stop() == 0

    records = metadata_records(report_dir)
    assert [r["path"] for r in records] == ["/alpha"]
    assert "alpha_work" in report_functions(report_dir, records[0])
    assert f"into {report_dir}" in server.log  # the start-up line, in gunicorn's log


# A user's own config: a setting (workers = 2) and hooks that log JSON lines to a marker file.
# - Their request hooks burn CPU in named functions: if our profiler were running around them (a
#   wrong hook order), those names would show up in the reports.
# - /pre-boom makes their pre_request raise, /alpha their post_request.
# - Their worker_exit and on_exit run after ours, so they already see every report of the worker
#   written (ours flushes the writer) and every job rendered (ours waits for the renderer).
USER_CONFIG = """
import json
import os
import time

workers = 2
_MARKER = os.environ["USER_HOOK_MARKER"]
_DIR = os.environ["GUNICORN_PYINSTRUMENT_DIR"]


def _mark(event, **extra):
    with open(_MARKER, "a") as f:
        f.write(json.dumps({"event": event, "pid": os.getpid(), **extra}) + "\\n")


def _burn(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        sum(i * i for i in range(200))


def their_pre_request_work():
    _burn(0.03)


def their_post_request_work():
    _burn(0.03)


def when_ready(server):
    _mark("when_ready")


def post_fork(server, worker):
    _mark("post_fork")


def pre_request(worker, req):
    _mark("pre_request", path=req.path)
    their_pre_request_work()
    if req.path == "/pre-boom":
        raise RuntimeError("their pre_request failed")


def post_request({post_request_args}):
    _mark("post_request", path=req.path)
    their_post_request_work()
    if req.path == "/alpha":
        raise RuntimeError("their post_request failed")


def worker_exit(server, worker):
    sessions = [n for n in os.listdir(_DIR) if n.endswith(".pyisession") and f"_{os.getpid()}-" in n]
    _mark("worker_exit", sessions=len(sessions))


def on_exit(server):
    spool = os.path.join(_DIR, ".spool")
    jobs = [n for n in os.listdir(spool) if n.endswith(".job.json")] if os.path.isdir(spool) else []
    complete = [n for n in os.listdir(_DIR) if n.endswith(".meta.json")]
    _mark("on_exit", jobs=len(jobs), complete=len(complete))
"""

INSTALL_LINE = "\nfrom gunicorn_pyinstrument import install; install(globals())\n"


@pytest.mark.parametrize("way", ["base-config", "install"])
def test_user_config_and_hooks_are_chained(gunicorn, tmp_path, report_dir, way):
    marker = tmp_path / "marker.jsonl"
    user_config = tmp_path / "user_gunicorn_conf.py"
    env = profiling_env(report_dir, FORMATS="session,html")
    env["USER_HOOK_MARKER"] = str(marker)
    if way == "base-config":
        # gunicorn also accepts a post_request hook of 2 arguments.
        user_config.write_text(USER_CONFIG.replace("{post_request_args}", "worker, req"))
        env[f"{ENV_PREFIX}_BASE_CONFIG"] = str(user_config)
        args = ["-c", CONFIG_MODULE]
    else:
        user_config.write_text(
            USER_CONFIG.replace("{post_request_args}", "worker, req, environ, resp") + INSTALL_LINE
        )
        args = ["-c", str(user_config)]
    # No -w on the command line: the 2 workers come from the user's config.
    server = gunicorn(*args, FLASK_APP, env=env, workers=2)

    assert get(server.url + "/alpha?s=0.05") == (200, b"alpha")  # their post_request raises
    assert get(server.url + "/pre-boom")[0] == 500  # their pre_request raises
    assert get(server.url + "/beta?s=0.05") == (200, b"beta")
    assert server.stop() == 0

    marks = [json.loads(line) for line in marker.read_text().splitlines()]
    events = [m["event"] for m in marks]
    fork_pids = {m["pid"] for m in marks if m["event"] == "post_fork"}
    assert len(fork_pids) == 2, marks  # their setting took effect and their post_fork ran in each
    assert events.count("when_ready") == 1
    requests = [(m["event"], m["path"]) for m in marks if "path" in m]
    for path in ("/alpha", "/pre-boom", "/beta"):
        assert ("pre_request", path) in requests
        assert ("post_request", path) in requests

    records = metadata_records(report_dir)
    assert sorted(r["path"] for r in records) == ["/alpha", "/beta", "/pre-boom"]
    assert {r["pid"] for r in records} <= fork_pids
    # Their post_request raising did not stop ours; their pre_request raising neither.
    [alpha] = by_path(records, "/alpha")
    assert alpha["status"] == 200
    [pre_boom] = by_path(records, "/pre-boom")
    assert pre_boom["status"] == 500
    assert "Exception in post_request hook" in server.log
    assert "alpha_work" in report_functions(report_dir, alpha)
    [beta] = by_path(records, "/beta")
    assert "beta_work" in report_functions(report_dir, beta)
    for rec in records:
        names = report_functions(report_dir, rec)
        # Ours starts after theirs on the way in and stops before theirs on the way out.
        assert "their_pre_request_work" not in names, rec["path"]
        assert "their_post_request_work" not in names, rec["path"]

    # On the way out ours runs first: each worker's writer was flushed before their worker_exit,
    # the renderer had finished before their on_exit.
    exits = {m["pid"]: m["sessions"] for m in marks if m["event"] == "worker_exit"}
    assert set(exits) == fork_pids
    for pid, sessions in exits.items():
        assert sessions == sum(1 for r in records if r["pid"] == pid)
    [on_exit] = [m for m in marks if m["event"] == "on_exit"]
    if "is still rendering" not in server.log:  # unless a busy machine starved the renderer for 10 s
        assert (on_exit["jobs"], on_exit["complete"]) == (0, 3)


def test_user_config_in_python_module_form(gunicorn, tmp_path, report_dir):
    """BASE_CONFIG=python:module.name loads a config module from the import path."""
    package = tmp_path / "pkg_for_base_config"
    package.mkdir()
    (package / "user_conf_module.py").write_text("workers = 2\n")
    env = profiling_env(report_dir, FORMATS="session", BASE_CONFIG="python:user_conf_module")
    env["PYTHONPATH"] = str(package)
    server = gunicorn("-c", CONFIG_MODULE, FLASK_APP, env=env, workers=2)
    assert get(server.url + "/") == (200, b"ok")
    assert server.stop() == 0
    assert len(set(server.worker_pids())) == 2
    assert [r["path"] for r in metadata_records(report_dir)] == ["/"]


# A minimal user config: each hook appends one JSON line to the marker file.
MARKING_CONFIG = """
import json
import os

workers = 2


def _mark(event, **extra):
    with open(os.environ["USER_HOOK_MARKER"], "a") as f:
        f.write(json.dumps({"event": event, "pid": os.getpid(), **extra}) + "\\n")


def pre_request(worker, req):
    _mark("pre_request", path=req.path)


def post_request(worker, req, environ, resp):
    _mark("post_request", path=req.path)
"""


def read_marks(marker):
    return [json.loads(line) for line in marker.read_text().splitlines()] if marker.exists() else []


def test_base_config_still_loaded_when_switched_off(gunicorn, tmp_path, report_dir):
    marker = tmp_path / "marker.jsonl"
    (tmp_path / "conf.py").write_text(MARKING_CONFIG)
    env = profiling_env(report_dir, BASE_CONFIG=str(tmp_path / "conf.py"))
    env.update({ENV_PREFIX: "0", "USER_HOOK_MARKER": str(marker)})
    server = gunicorn("-c", CONFIG_MODULE, FLASK_APP, env=env, workers=2)
    assert get(server.url + "/") == (200, b"ok")
    assert server.stop() == 0
    assert len(set(server.worker_pids())) == 2  # their setting
    assert [m["event"] for m in read_marks(marker)] == ["pre_request", "post_request"]  # their hooks
    assert not report_dir.exists()


def test_base_config_with_the_install_line_is_not_chained_twice(gunicorn, tmp_path, report_dir):
    marker = tmp_path / "marker.jsonl"
    (tmp_path / "conf.py").write_text(MARKING_CONFIG + INSTALL_LINE)
    env = profiling_env(report_dir, FORMATS="session", BASE_CONFIG=str(tmp_path / "conf.py"))
    env["USER_HOOK_MARKER"] = str(marker)
    server = gunicorn("-c", CONFIG_MODULE, FLASK_APP, env=env, workers=2)
    assert get(server.url + "/alpha?s=0.02") == (200, b"alpha")
    assert server.stop() == 0
    assert [m["event"] for m in read_marks(marker)] == ["pre_request", "post_request"]
    assert [r["path"] for r in metadata_records(report_dir)] == ["/alpha"]


def test_hook_given_as_a_dotted_string(gunicorn, tmp_path, report_dir):
    marker = tmp_path / "marker.jsonl"
    package = tmp_path / "importable"
    package.mkdir()
    (package / "user_hooks.py").write_text(MARKING_CONFIG)
    (tmp_path / "conf.py").write_text('pre_request = "user_hooks.pre_request"\n' + INSTALL_LINE)
    env = profiling_env(report_dir, FORMATS="session")
    env.update({"USER_HOOK_MARKER": str(marker), "PYTHONPATH": str(package)})
    server = gunicorn("-c", str(tmp_path / "conf.py"), "-w", "1", FLASK_APP, env=env)
    assert get(server.url + "/beta?s=0.02") == (200, b"beta")
    assert server.stop() == 0
    assert [m["event"] for m in read_marks(marker)] == ["pre_request"]
    [record] = metadata_records(report_dir)
    assert "beta_work" in report_functions(report_dir, record)


def test_hook_with_a_wrong_arity_is_refused_as_gunicorn_would(gunicorn, tmp_path, report_dir):
    (tmp_path / "conf.py").write_text("def pre_request(worker):\n    pass\n")
    env = profiling_env(report_dir, BASE_CONFIG=str(tmp_path / "conf.py"))
    result = gunicorn.run("-c", CONFIG_MODULE, FLASK_APP, env=env)
    # The same file given to gunicorn directly, without the plugin: same status, same words.
    plain = gunicorn.run("-c", str(tmp_path / "conf.py"), FLASK_APP, env={})
    assert result.returncode == plain.returncode != 0
    for output in (result.stderr, plain.stderr):
        assert "Invalid value for pre_request" in output
        assert "Value must have an arity of: 2" in output


def test_their_raising_post_fork_still_stops_the_server(gunicorn, tmp_path, report_dir):
    (tmp_path / "conf.py").write_text("def post_fork(server, worker):\n    raise RuntimeError('theirs')\n")
    env = profiling_env(report_dir, BASE_CONFIG=str(tmp_path / "conf.py"))
    result = gunicorn.run("-c", CONFIG_MODULE, "-w", "1", FLASK_APP, env=env)
    assert result.returncode == 3  # gunicorn's "Worker failed to boot"
    assert "RuntimeError: theirs" in result.stderr
    assert "Worker failed to boot" in result.stderr
