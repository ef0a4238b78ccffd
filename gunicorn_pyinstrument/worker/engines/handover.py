"""Work a request hands to a thread pool, followed into the pool and kept in the request's report.

``CURRENT`` holds the *owner* of the running request: the engine's capture, set by request mode
in the request's thread or task (child tasks inherit it). Two patches read it in the submitting
thread, at submit time, and wrap the job:

* ``concurrent.futures.ThreadPoolExecutor.submit``: ``loop.run_in_executor`` (asyncio and uvloop,
  the default executor or one of the app's), ``asyncio.to_thread``, asgiref's ``sync_to_async``
  in both ``thread_sensitive`` modes (Django's sync views and middleware under ASGI), and a WSGI
  view's own executor;
* anyio's ``run_sync_in_worker_thread``: ``anyio.to_thread.run_sync``, so Starlette's
  ``run_in_threadpool`` and FastAPI's ``def`` endpoints and dependencies.

Read at submit time, because that is the only place the hand-over is known: ``run_in_executor``
does not copy the context into the pool, and where it is copied (``to_thread``, anyio, asgiref)
the copy is entered inside the job, after any pool-side hook. The wrapper (:func:`run_job`) tells
the owner when the job starts and ends in its pool thread, and publishes the owner there so that
a job that hands work over itself is followed too.

A job's frames belong under its *hand-over stack*: the submitting thread's stack cut after its
innermost coroutine (the one that awaits the job), or after the caller of ``submit`` when no
coroutine is on the stack. The pool's own frames (thread start-up, the executor's loop, this
module) never show.

The patches go in when the first request is profiled (:func:`install`) and come out with the
last engine that used them (:func:`uninstall`): with profiling off nothing is patched, and a
submit outside a profiled request costs one context-variable read.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any, Protocol

from .frames import cached_identifier, function_key, is_coroutine, stack_of, stack_until, thread_root


class Owner(Protocol):
    """A capture that follows its request's pool work."""

    #: False once the capture stopped: jobs submitted later are not followed.
    active: bool

    @property
    def wants_handover_stack(self) -> bool:
        """The sampler grafts pool stacks under the hand-over stack; pyinstrument's engine needs
        only the frame that waits for the job, found again in its own records."""

    def job_started(self, job: Job) -> None: ...

    def job_finished(self, job: Job) -> None: ...


CURRENT: contextvars.ContextVar[Owner | None] = contextvars.ContextVar(
    "gunicorn_pyinstrument_owner", default=None
)


class Job:
    """One piece of work handed to a pool by a profiled request."""

    __slots__ = (
        "children",
        "fn",
        "frame",
        "handover",
        "ident",
        "key",
        "last_stack",
        "owner",
        "parent",
        "profiler",
        "records",
        "t0",
        "t1",
    )

    def __init__(self, owner: Owner, parent: Job | None, handover: list[str], key: str) -> None:
        self.owner = owner
        self.parent = parent  # the job that handed this one over, or None: the request itself
        self.handover = handover  # the stack the job's own frames hang under (sampler)
        self.key = key  # function_key of the frame that waits for the job
        self.ident = 0  # the pool thread
        self.frame: FrameType | None = None  # run_job's frame: the job's own frames are above it
        self.fn: Any = None
        self.t0 = self.t1 = 0.0
        self.records: list[tuple[list[str], float]] = []  # pyinstrument engine: the job's profile
        self.profiler: Any = None
        self.children: list[Job] = []  # jobs this one handed over (pyinstrument engine)
        self.last_stack: list[str] | None = None  # sampler: where the job was last seen


_jobs = threading.local()  # .job: the job this pool thread is running, for nested hand-overs


def _ours(frame: FrameType) -> bool:
    return frame.f_code.co_filename == __file__


def handover(owner: Owner, caller: FrameType) -> Job:
    """Describe the hand-over that ``caller`` (the frame that called submit) is making, in the
    submitting thread."""
    parent: Job | None = getattr(_jobs, "job", None)
    if parent is not None and parent.owner is not owner:
        parent = None
    frame: FrameType | None = caller
    while frame is not None and _ours(frame):
        frame = frame.f_back
    cut = frame
    while frame is not None and (parent is None or frame is not parent.frame):
        if is_coroutine(frame):
            cut = frame
            break
        frame = frame.f_back
    key = function_key(cached_identifier(cut)) if cut is not None else ""
    stack: list[str] = []
    if owner.wants_handover_stack and cut is not None:
        if parent is not None and parent.frame is not None:
            stack = parent.handover + (stack_until(cut, parent.frame) or [])
        else:
            ident = threading.get_ident()
            stack = stack_of(cut, thread_root(ident))
    job = Job(owner, parent, stack, key)
    if parent is not None:
        parent.children.append(job)
    return job


def run_job(job: Job, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """In the pool thread, around one job. The profiler's bookkeeping never breaks the job."""
    previous = getattr(_jobs, "job", None)
    _jobs.job = job
    token = CURRENT.set(job.owner)  # for a nested hand-over, even where the context was not copied
    job.ident = threading.get_ident()
    job.frame = sys._getframe()
    job.fn = fn
    job.t0 = time.perf_counter()
    with contextlib.suppress(Exception):
        job.owner.job_started(job)
    try:
        return fn(*args, **kwargs)
    finally:
        job.t1 = time.perf_counter()
        with contextlib.suppress(Exception):
            job.owner.job_finished(job)
        CURRENT.reset(token)
        _jobs.job = previous


#: The function key of run_job's frame: a job's own frames are those above it.
RUN_JOB_KEY = f"{run_job.__code__.co_name}\x00{__file__}\x00{run_job.__code__.co_firstlineno}"
_OWN_FRAMES = f"\x00{__file__}\x00"


def without_own_frames(records: list[tuple[list[str], float]]) -> list[tuple[list[str], float]]:
    """The records without this module's frames (the patched submit, the anyio wrapper), which
    would sit between the app's call and the pool's in every report that hands work over."""
    tag = _OWN_FRAMES
    return [
        ([f for f in stack if tag not in f], t) if any(tag in f for f in stack) else (stack, t)
        for stack, t in records
    ]


# --- the patches ---

_lock = threading.Lock()
_users = 0
_original_submit: Any = None
_original_anyio: Any = None
_anyio_class: Any = None


def _submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    owner = CURRENT.get()
    if owner is None or not owner.active:
        return _original_submit(self, fn, *args, **kwargs)
    job = handover(owner, sys._getframe(1))
    return _original_submit(self, run_job, job, fn, args, kwargs)


async def _run_sync_in_worker_thread(
    cls: Any, func: Callable[..., Any], args: Any, *rest: Any, **kw: Any
) -> Any:
    owner = CURRENT.get()
    if owner is not None and owner.active:
        job = handover(owner, sys._getframe(1))
        inner = func

        def func(*a: Any) -> Any:  # runs in anyio's worker thread, inside the copied context
            return run_job(job, inner, a, {})

    return await _original_anyio.__func__(cls, func, args, *rest, **kw)


def _anyio_backend() -> Any:
    try:
        from anyio._backends._asyncio import AsyncIOBackend
    except Exception:  # no anyio, or one laid out otherwise: its pool work is not followed
        return None
    if not isinstance(AsyncIOBackend.__dict__.get("run_sync_in_worker_thread"), classmethod):
        return None
    return AsyncIOBackend


def install() -> None:
    """Put the patches in (counted: each engine that follows pool work installs once)."""
    global _users, _original_submit, _original_anyio, _anyio_class
    with _lock:
        _users += 1
        if _users > 1:
            return
        executor = concurrent.futures.ThreadPoolExecutor
        _original_submit = executor.__dict__["submit"]
        executor.submit = _submit  # type: ignore[method-assign]
        _anyio_class = _anyio_backend()
        if _anyio_class is not None:
            _original_anyio = _anyio_class.__dict__["run_sync_in_worker_thread"]
            _anyio_class.run_sync_in_worker_thread = classmethod(_run_sync_in_worker_thread)


def uninstall() -> None:
    """Take the patches out when the last engine that installed them is done."""
    global _users, _original_submit, _original_anyio, _anyio_class
    with _lock:
        if _users == 0:
            return
        _users -= 1
        if _users:
            return
        concurrent.futures.ThreadPoolExecutor.submit = _original_submit  # type: ignore[method-assign]
        _original_submit = None
        if _anyio_class is not None:
            _anyio_class.run_sync_in_worker_thread = _original_anyio
            _original_anyio = _anyio_class = None


def installed() -> bool:
    return concurrent.futures.ThreadPoolExecutor.__dict__.get("submit") is _submit
