"""What the plugin needs to know about each gunicorn worker class, in one table.

Every decision that depends on the worker class (how requests are reached, whether concurrent
requests share a thread, which signals must be caught) reads it from here; docs/workers.md shows
the same table (``python -m gunicorn_pyinstrument.worker.classes`` prints it; a test checks it).
A worker class that is not listed is looked up by its base classes, so a subclass of a listed
class behaves as that class; one that derives from none of them is treated as ``sync``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: How requests are reached: gunicorn's request hooks, or a wrapper around the loaded app (for the
#: workers that never call the request hooks, or call them without the response).
HOOKS, WRAP_WSGI, WRAP_ASGI = "hooks", "wsgi-wrapper", "asgi-wrapper"


@dataclass(frozen=True)
class WorkerClass:
    name: str  #: as given to ``-k``
    class_names: tuple[str, ...]  #: the classes, by name, from the most derived
    front_end: str
    #: Concurrent requests share one OS thread (greenlets, asyncio tasks, tornado coroutines): only
    #: pyinstrument's strict async mode keeps one request's frames out of another's report.
    shares_thread: bool = False
    #: Requests run on pool threads, not on the thread that runs the worker's heartbeat.
    pool_threads: bool = False
    #: Requests are greenlets: a request's capture follows its greenlet.
    greenlets: bool = False
    #: worker_abort does not run while the event loop is blocked: a timeout is caught as SIGABRT.
    abort_by_signal: bool = False
    #: Dies on SIGTERM without running worker_exit: the signal is caught to write what is pending.
    exits_without_worker_exit: bool = False
    #: Beats only every ``--timeout``/2 seconds, so windows also turn over after each request.
    sparse_heartbeat: bool = False
    #: The oldest gunicorn that has it.
    since: str = "23.0"
    #: What happens to a request that runs past ``--timeout``, for docs/workers.md.
    timeout: str = "profile written"


TABLE: tuple[WorkerClass, ...] = (
    WorkerClass("sync", ("SyncWorker",), HOOKS),
    WorkerClass("gthread", ("ThreadWorker",), HOOKS, pool_threads=True, timeout="never timed out"),
    WorkerClass("gevent_pywsgi", ("GeventPyWSGIWorker",), WRAP_WSGI, shares_thread=True, greenlets=True),
    WorkerClass("gevent", ("GeventWorker",), HOOKS, shares_thread=True, greenlets=True),
    WorkerClass("tornado", ("TornadoWorker",), WRAP_WSGI, shares_thread=True, timeout="never timed out"),
    WorkerClass(
        "asgi",
        ("ASGIWorker",),
        WRAP_ASGI,  # its post_request gets the status only with access logging on
        shares_thread=True,
        abort_by_signal=True,
        since="24.0",
        timeout="profile written (SIGABRT caught)",
    ),
    WorkerClass(
        "uvicorn_worker.UvicornWorker",
        ("UvicornWorker", "UvicornH11Worker"),
        WRAP_ASGI,
        shares_thread=True,
        abort_by_signal=True,
        exits_without_worker_exit=True,
        sparse_heartbeat=True,
        timeout="profile written (SIGABRT caught)",
    ),
)
_BY_CLASS_NAME = {class_name: entry for entry in TABLE for class_name in entry.class_names}


def facts_of(worker: Any) -> WorkerClass:
    """The table's entry for a worker object (or a worker class)."""
    cls = worker if isinstance(worker, type) else type(worker)
    for base in cls.__mro__:
        entry = _BY_CLASS_NAME.get(base.__name__)
        if entry is not None:
            return entry
    if hasattr(worker, "asgi"):
        return _BY_CLASS_NAME["ASGIWorker"]
    return TABLE[0]


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


def render_table() -> str:
    """The table as docs/workers.md shows it."""
    rows = [
        "| worker (`-k`) | reached by | requests share a thread | pool threads | timed-out request "
        "| gunicorn |",
        "|---|---|---|---|---|---|",
    ]
    for entry in TABLE:
        rows.append(
            f"| `{entry.name}` | {entry.front_end} | {_yes(entry.shares_thread)} "
            f"| {_yes(entry.pool_threads)} | {entry.timeout} | {entry.since}+ |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render_table(), end="")
