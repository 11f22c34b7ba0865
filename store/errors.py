"""The root of every exception artlens raises on purpose.

It lives here, in the lowest layer, so that every layer can derive from it while the store imports nothing
else of artlens; import it from `artlens.errors`, its public place.
"""
from __future__ import annotations


class ArtlensError(Exception):
    """An error artlens raised on purpose. One that is not also a `UserError` means a bug or a broken
    environment: the CLI reports it in one line, exits 1, and prints the traceback under `-v`."""


class UserError(ArtlensError, ValueError):
    """Input or arguments the caller can fix; the message says what to change. The CLI reports it in one
    line and exits 2. `argument` names the Python argument (a config field) at fault, when there is one:
    library messages use Python names, and the CLI adds the flag (`batch_size` → `--batch-size`)."""

    def __init__(self, message: str, *, argument: str | None = None):
        super().__init__(message)
        self.argument = argument
