"""Nothing of the reading side (sqlite3, the catalog, http.server, boto3) in a real worker, after
it has profiled requests, in either mode and with every helper duty on (rendering, retention)."""

from __future__ import annotations

import json

import pytest
from support import CONFIG_FILE, get, profiling_env, wait_for_metadata

MODULES_APP = "tests.apps.modules_app:app"


@pytest.mark.parametrize(("worker_class", "mode"), [("sync", "request"), ("gthread", "worker")])
def test_a_profiling_worker_imports_nothing_of_the_reading_side(gunicorn, report_dir, worker_class, mode):
    env = profiling_env(report_dir, MODE=mode, FORMATS="session,html", MAX_REPORTS="100", FLUSH_INTERVAL="1")
    server = gunicorn("-c", CONFIG_FILE, "-k", worker_class, "-w", "1", MODULES_APP, env=env)
    for _ in range(3):
        assert get(server.url + "/modules")[0] == 200
    assert wait_for_metadata(report_dir, 1, timeout=30)  # written: the writer has done its work
    status, body = get(server.url + "/modules")
    assert status == 200
    answer = json.loads(body)
    assert answer["plugin"] is True  # the hooks run in this worker
    assert answer["loaded"] == []
