"""The root of every exception artlens raises on purpose.

It lives here, in the lowest layer, so that every layer can derive from it while the store imports nothing
else of artlens; import it from `artlens.errors`, its public place.
"""
from __future__ import annotations

import errno
import re
from dataclasses import dataclass
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


class ArtlensWarning(ArtlensError, UserWarning):
    """Something artlens noticed and could work around, but the user should fix (a store whose parts and
    catalog disagree, fields a repair could not recover); the message says what to run. Issued with
    `warnings.warn` (an ArtlensError too, so one root holds all); the CLI prints each as one `warning:` line."""


class MissingInput(UserError, FileNotFoundError):
    """A file or folder the caller named that does not exist (also a FileNotFoundError)."""


class OutputExists(UserError, FileExistsError):
    """An output the command would overwrite without being asked to (also a FileExistsError)."""


#: The errno values of a full device or an exhausted disk quota.
NO_SPACE_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)
#: How libraries that do not raise an OSError say it: DuckDB (`IO Error: Could not write file "PATH": No
#: space left on device`, also inside a TransactionException), pyarrow's detail text, a DataLoader worker's
#: re-raised error (whose message holds the worker's traceback).
_NO_SPACE_TEXT = re.compile(r"no space left on device|disk quota exceeded", re.IGNORECASE)
_PATHS_IN_TEXT = (re.compile(r"""(?i:no space left on device|disk quota exceeded): ["']([^"'\n]+)["']"""),
                  re.compile(r"""\bwrite file ["']([^"'\n]+)["']"""))


@dataclass(frozen=True)
class DiskFull:
    """A write that failed because the device (or the quota) is full; `path` the file, when known."""
    path: str | None


def disk_full(exc: BaseException) -> DiskFull | None:
    """The full disk behind `exc` (itself, or an exception it was raised from or while handling), or None:
    an OSError with errno ENOSPC or EDQUOT, or an error of DuckDB, pyarrow or a worker process that says so."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        text = str(exc)
        if (isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS) or _NO_SPACE_TEXT.search(text):
            if isinstance(exc, OSError) and exc.filename:
                return DiskFull(str(exc.filename))
            found = next((m.group(1) for m in (r.search(text) for r in _PATHS_IN_TEXT) if m), None)
            return DiskFull(found)
        exc = exc.__cause__ or exc.__context__
    return None
