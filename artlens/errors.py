"""artlens's exceptions: one root, `ArtlensError`, and its branch `UserError` for what the caller can fix.

    try:
        artlens.extract(cfg)
    except artlens.UserError as exc:      # bad arguments or input: the message says what to change
        ...

Every module's own exceptions derive from one of these two (and, where they refine one, from the builtin:
`UserError` is a `ValueError`; `MissingInput` also a `FileNotFoundError`, `OutputExists` a
`FileExistsError`). The classes live in `artlens.store.errors`, the lowest layer, so that the store can use
them without importing anything else of artlens. A `UserError` names its Python arguments
(`UserError("batch_size must be at least 1", argument="batch_size")`); the CLI prints them as flags.
"""
from artlens.store.errors import (ArtlensError, ArtlensWarning, DiskFull, MissingInput, OutputExists, UserError,
                                  disk_full)

__all__ = ["ArtlensError", "ArtlensWarning", "DiskFull", "MissingInput", "OutputExists", "UserError", "disk_full"]
