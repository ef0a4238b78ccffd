"""Capture engines: start(description) -> handle, stop(handle) -> pyinstrument Session."""

from .base import Engine
from .pyinstrument import PyinstrumentEngine

__all__ = ["Engine", "PyinstrumentEngine"]
