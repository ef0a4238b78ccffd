"""The worker-class table: lookups by class and base class, and docs/workers.md shows it."""

from __future__ import annotations

from pathlib import Path

from gunicorn.workers.ggevent import GeventPyWSGIWorker, GeventWorker
from gunicorn.workers.gthread import ThreadWorker
from gunicorn.workers.sync import SyncWorker

from gunicorn_pyinstrument.worker.classes import HOOKS, TABLE, WRAP_ASGI, WRAP_WSGI, facts_of, render_table

DOCS = Path(__file__).resolve().parents[3] / "docs" / "workers.md"


def test_each_gunicorn_class_has_its_entry():
    assert facts_of(SyncWorker).name == "sync"
    assert facts_of(ThreadWorker).pool_threads
    assert facts_of(GeventWorker).front_end == HOOKS
    assert facts_of(GeventWorker).shares_thread
    assert facts_of(GeventPyWSGIWorker).front_end == WRAP_WSGI  # not its base class's entry


def test_uvicorn_workers():
    from uvicorn_worker import UvicornH11Worker, UvicornWorker

    for cls in (UvicornWorker, UvicornH11Worker):
        facts = facts_of(cls)
        assert facts.front_end == WRAP_ASGI
        assert facts.abort_by_signal and facts.exits_without_worker_exit and facts.sparse_heartbeat


def test_a_subclass_is_its_base_class():
    class MyGevent(GeventWorker):
        pass

    assert facts_of(MyGevent).name == "gevent"


def test_an_unknown_class_is_sync_unless_it_serves_asgi():
    class Mystery:
        pass

    class AsgiLike:
        asgi = None

    assert facts_of(Mystery()).name == "sync"
    assert facts_of(AsgiLike()).name == "asgi"


def test_names_are_unique():
    names = [entry.name for entry in TABLE]
    assert len(names) == len(set(names))


def test_docs_show_the_table():
    assert render_table() in DOCS.read_text()
