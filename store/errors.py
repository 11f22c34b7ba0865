"""The root of every exception artlens raises on purpose.

It lives here, in the lowest layer, so that every layer can derive from it while the store imports nothing
else of artlens; import it from `artlens.errors`, its public place.
"""
from __future__ import annotations

import re
from typing import Callable


class ArtlensError(Exception):
    """An error artlens raised on purpose. One that is not also a `UserError` means a bug or a broken
    environment: the CLI reports it in one line, exits 1, and prints the traceback under `-v`."""


class UserError(ArtlensError, ValueError):
    """Input or arguments the caller can fix; the message says what to change. The CLI reports it in one
    line and exits 2. `argument` names the Python argument (a config field) at fault, when there is one:
    library messages use Python names, and the CLI adds the flag (`batch_size` → `--batch-size`).
    A message about several arguments names them all: `argument=("steps", "batch_size")`.

    A mention is the argument's name as a whole word (`batch_size must be at least 1`); where the name is
    also an ordinary word of the message (table, image, out), mark the mentions with backticks
    (`"table 'x' exists; use another `table`"`): then only the marked ones are renamed. Quote values
    (`{value!r}`) so that a value is never taken for a mention."""

    def __init__(self, message: str, *, argument: str | tuple[str, ...] | None = None):
        super().__init__(message)
        self.arguments: tuple[str, ...] = (argument,) if isinstance(argument, str) else tuple(argument or ())
        self.argument = self.arguments[0] if self.arguments else None

    def render(self, name_of: Callable[[str], str]) -> str:
        """The message with every whole-word mention of its arguments renamed by `name_of` (the CLI passes
        Python name → flag), so `batch_size must be at least 1` reads `--batch-size must be at least 1`."""
        text = str(self)
        for argument in self.arguments:
            if f"`{argument}`" in text:
                text = text.replace(f"`{argument}`", name_of(argument))
                continue
            text = re.sub(rf"(?<![\w\-=./\\'\"`]){re.escape(argument)}(?![\w\-=(/\\`]|'s\b|\.\w)",
                          lambda _m, a=argument: name_of(a), text)
        return text


class MissingInput(UserError, FileNotFoundError):
    """A file or folder the caller named that does not exist (also a FileNotFoundError)."""


class OutputExists(UserError, FileExistsError):
    """An output the command would overwrite without being asked to (also a FileExistsError)."""
