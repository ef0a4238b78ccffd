"""Where report bytes go. A store puts bytes under a name atomically, lists and reads them."""

from .local import LocalStore, ensure_directory

__all__ = ["LocalStore", "ensure_directory"]
