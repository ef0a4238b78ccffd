"""Frames as pyinstrument names them: the single owner of the frame-identifier format here.

pyinstrument's identifier is ``name\x00file\x00first line``, then ``\x01c<class>`` and
``\x01l<current line>``; a stack is a list of them, outermost first, under a synthetic thread root.
The sampler engine and the hand-over of pool work build theirs with these functions, so their
records merge with pyinstrument's own.
"""

from __future__ import annotations

import inspect
import sys
import threading
from types import CodeType, FrameType

_HAS_QUALNAME = sys.version_info >= (3, 11)


def frame_identifier(frame: FrameType) -> str:
    """pyinstrument's frame identifier: name, file, first line, then the class and current line."""
    code = frame.f_code
    identifier = f"{code.co_name}\x00{code.co_filename}\x00{code.co_firstlineno}"
    if _HAS_QUALNAME:
        owner, _, _ = code.co_qualname.rpartition(".")
        if owner and not owner.endswith(">"):  # not "<locals>" or "<lambda>"
            identifier += f"\x01c{owner}"
    else:
        defining = _defining_class(frame)
        if defining:
            identifier += f"\x01c{defining}"
    if frame.f_lineno is not None:
        identifier += f"\x01l{frame.f_lineno}"
    return identifier


def _defining_class(frame: FrameType) -> str | None:
    """Before Python 3.11 (no ``co_qualname``): the class that defines the method, found from its
    ``self`` or ``cls`` as pyinstrument does, then up the MRO to the class whose attribute holds this
    code, so that the name depends on the code alone, as ``co_qualname``'s does, and can be cached."""
    code = frame.f_code
    if code.co_argcount < 1 or code.co_varnames[0] not in ("self", "cls"):
        return None
    try:
        first = frame.f_locals.get(code.co_varnames[0])
        start = first if code.co_varnames[0] == "cls" and isinstance(first, type) else type(first)
        for klass in start.__mro__:
            attribute = klass.__dict__.get(code.co_name)
            function = getattr(attribute, "__func__", getattr(attribute, "fget", attribute))
            if getattr(function, "__code__", None) is code:
                return klass.__name__
        return start.__name__
    except Exception:  # an object whose type or attributes misbehave: no class, as pyinstrument
        return None


#: Identifiers by (code, instruction offset): a sample then costs a dict lookup per frame, not a
#: string build (formatting was most of the sampler's own CPU). The offset, not the line, is the key
#: because ``f_lineno`` decodes the line table on every read (half the cost of a walk, measured);
#: offsets on the same line share one string through ``_BY_LINE``. The code object goes in the key
#: by its ``id``: a code object's hash is computed afresh from its names and constants on every
#: lookup (0.2-2 us each, measured: most of a walk), and ``_CODES`` keeps every code object of a key
#: alive, so that no other can take its id while the key is there. All bounded: cleared together
#: when the first grows past the limit.
_IDENTIFIERS: dict[tuple[int, int], str] = {}
_BY_LINE: dict[tuple[int, int | None], str] = {}
_CODES: dict[int, CodeType] = {}
_IDENTIFIERS_LIMIT = 50_000


def _identifier_miss(frame: FrameType, key: tuple[int, int]) -> str:
    if len(_IDENTIFIERS) >= _IDENTIFIERS_LIMIT:
        _IDENTIFIERS.clear()
        _BY_LINE.clear()
        _CODES.clear()
    code = frame.f_code
    _CODES[key[0]] = code
    line_key = (key[0], frame.f_lineno)
    identifier = _BY_LINE.get(line_key)
    if identifier is None:
        identifier = _BY_LINE[line_key] = frame_identifier(frame)
    _IDENTIFIERS[key] = identifier
    return identifier


def cached_identifier(frame: FrameType) -> str:
    """One frame's identifier through the cache (``stack_of`` inlines the same lookup, per frame)."""
    key = (id(frame.f_code), frame.f_lasti)
    return _IDENTIFIERS.get(key) or _identifier_miss(frame, key)


def stack_of(frame: FrameType | None, root: str) -> list[str]:
    """The identifiers of ``frame`` and its callers, outermost first, under ``root``."""
    stack: list[str] = []
    append = stack.append
    known = _IDENTIFIERS.get
    code_id = id
    while frame is not None:
        key = (code_id(frame.f_code), frame.f_lasti)
        append(known(key) or _identifier_miss(frame, key))
        frame = frame.f_back
    stack.append(root)
    stack.reverse()
    return stack


def thread_root(ident: int) -> str:
    thread = threading._active.get(ident)  # type: ignore[attr-defined]
    name = thread.name if thread is not None else f"Thread-{ident}"
    return f"{name}\x00<thread>\x00{ident}"


def stack_until(frame: FrameType | None, stop: FrameType) -> list[str] | None:
    """The identifiers of ``frame`` and its callers up to ``stop`` (left out), outermost first; None
    when ``stop`` is not among them (the thread has moved on to other work)."""
    stack: list[str] = []
    append = stack.append
    known = _IDENTIFIERS.get
    code_id = id
    while frame is not None and frame is not stop:
        key = (code_id(frame.f_code), frame.f_lasti)
        append(known(key) or _identifier_miss(frame, key))
        frame = frame.f_back
    if frame is None:
        return None
    stack.reverse()
    return stack


_COROUTINE_FLAGS = inspect.CO_COROUTINE | inspect.CO_ITERABLE_COROUTINE | inspect.CO_ASYNC_GENERATOR


def is_coroutine(frame: FrameType) -> bool:
    return bool(frame.f_code.co_flags & _COROUTINE_FLAGS)


def below_tasks(frame: FrameType | None) -> FrameType | None:
    """On an event loop's thread: the frame under the outermost coroutine (the loop's own frames,
    where it waits when no task runs), or None when no coroutine is on the stack."""
    base = None
    while frame is not None:
        if is_coroutine(frame):
            base = frame.f_back
        frame = frame.f_back
    return base


def function_key(identifier: str) -> str:
    """The part of an identifier that names the function (name, file, first line): the same
    function matches whatever its current line or the class pyinstrument saw it in."""
    return identifier.split("\x01", 1)[0]
