"""artlens's exceptions: one root, `ArtlensError`, and its branch `UserError` for what the caller can fix.

    try:
        artlens.extract(cfg)
    except artlens.UserError as exc:      # bad arguments or input: the message says what to change
        ...

Every module's own exceptions derive from one of these two (and, where they refine one, from the builtin:
`UserError` is a `ValueError`). The classes live in `artlens.store.errors`, the lowest layer, so that the
store can use them without importing anything else of artlens.
"""
from artlens.store.errors import ArtlensError, UserError

__all__ = ["ArtlensError", "UserError"]
