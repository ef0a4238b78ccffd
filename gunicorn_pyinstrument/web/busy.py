"""How busy a worker was in one window: the time its threads ran code, against the time it
waited for work.

A sample is *waiting* when its innermost frame is one of the waits a worker idles in: its main
loop's ``select``/``poll``/``epoll`` (as a built-in with pyinstrument's engine, as the Python
function around it with the sampler's), gunicorn's sync worker waiting for a connection, gevent's
hub, an idle pool thread, a ``threading`` wait. Every other sample is *busy*: a request's code,
and also its own waits on the network or a lock inside the app, which hold the worker as much
as code does. Busy time is summed over the worker's threads and capped at the window's length
(threads running at once would otherwise count twice); idle is the rest of the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyinstrument.session import Session

#: Built-ins a loop waits in (pyinstrument's engine records C calls), by name without its class:
#: select.select, select.poll.poll, select.epoll.poll, select.kqueue.control.
WAIT_BUILTINS = frozenset({"select", "poll", "control"})
#: Python functions that a worker waits in, by name and the end of their file name.
WAIT_FUNCTIONS = frozenset(
    {
        ("select", "/selectors.py"),
        ("wait", "/gunicorn/workers/sync.py"),
        ("run", "/gevent/hub.py"),
        ("wait", "/threading.py"),
        ("_worker", "/concurrent/futures/thread.py"),
        ("get", "/queue.py"),
        ("_run_once", "/asyncio/base_events.py"),
        ("run_forever", "/asyncio/base_events.py"),
    }
)
#: Worker loops whose every direct call is their wait (gevent's: ``gevent.sleep(1.0)`` between
#: heartbeats, the requests running in other greenlets meanwhile).
WAITING_LOOPS = frozenset({("run", "/gunicorn/workers/ggevent.py")})


def _matches(identifier: str, functions: frozenset[tuple[str, str]]) -> bool:
    parts = identifier.partition("\x01")[0].split("\x00")
    if len(parts) != 3:
        return False
    name, filename = parts[0], parts[1].replace("\\", "/")
    return any(name == wait and filename.endswith(suffix) for wait, suffix in functions)


def is_wait(stack: tuple[str, ...] | list[str]) -> bool:
    """Whether a sample's stack (pyinstrument's frame identifiers, outermost first) is a worker
    waiting for work: its innermost frame is a wait, or the call of a loop that only waits."""
    leaf = stack[-1]
    parts = leaf.partition("\x01")[0].split("\x00")
    if len(parts) == 3 and parts[1] == "<built-in>":
        return parts[0].rpartition(".")[2] in WAIT_BUILTINS
    if _matches(leaf, WAIT_FUNCTIONS):
        return True
    return len(stack) > 1 and _matches(stack[-2], WAITING_LOOPS)


@dataclass(frozen=True)
class Busy:
    """Seconds of one window: its length, busy (capped at the length) and idle."""

    duration: float
    busy: float

    @property
    def idle(self) -> float:
        return self.duration - self.busy

    @property
    def share(self) -> float:
        return self.busy / self.duration if self.duration > 0 else 0.0


def busy_of(session: Session, duration: float | None = None) -> Busy:
    """Busy against idle time of a window's session (``duration``: the window's length, from its
    metadata record; the session's own by default)."""
    length = session.duration if duration is None else duration
    waits: dict[tuple[str, str], bool] = {}
    busy = 0.0
    for stack, seconds in session.frame_records:
        if not stack:
            continue
        key = (stack[-1], stack[-2] if len(stack) > 1 else "")
        waiting = waits.get(key)
        if waiting is None:
            waiting = waits[key] = is_wait(stack)
        if not waiting:
            busy += seconds
    return Busy(length, min(busy, length))
