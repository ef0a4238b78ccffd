"""Where report bytes go. A store puts bytes under a name atomically, lists and reads them."""

from .local import LocalStore

__all__ = ["LocalStore"]
