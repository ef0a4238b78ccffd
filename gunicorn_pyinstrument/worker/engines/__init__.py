"""Capture engines: start(description) -> handle, stop(handle) -> pyinstrument Session.

``pyinstrument``: pyinstrument's own profiler (exact, a hook on every call). ``sampler``: stacks
read from a background thread (statistical, a few percent of CPU)."""

from .base import Engine
from .pyinstrument import PyinstrumentEngine
from .sampler import SamplerEngine

__all__ = ["Engine", "PyinstrumentEngine", "SamplerEngine"]
