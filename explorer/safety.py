"""What a request may name, checked before anything reads the store: a table of the catalog, a column of that
table, a number within bounds. Every other value from a request (a key, a filter, words) is a parameter or
goes through the store's own filter machinery (store/filters.py), never into SQL text or a path."""
from __future__ import annotations

from artlens.errors import UserError
from artlens.store.filters import quote_ident


class NotFound(UserError, LookupError):
    """A table, row, result or image the store does not hold: HTTP 404."""


class BadRequest(UserError, ValueError):
    """A request the explorer refuses (a bad number, an unknown column): HTTP 400."""


#: Upper bounds that keep one request small.
MAX_K = 500
MAX_SIZE = 2048
MAX_UPLOAD = 32 * 1024 * 1024


def known_table(store, table: str) -> str:
    """`table` when it is one of the catalog's tables, else NotFound (never a path or other name)."""
    if table not in store.tables():
        raise NotFound(f"no table {table!r} in the store; tables: {', '.join(store.tables()) or 'none'}")
    return table




def columns_of(store, table: str) -> list[str]:
    """The table's columns as its view has them."""
    return [name for name in store.sql(f"SELECT * FROM {quote_ident(known_table(store, table))} LIMIT 0").column_names]


def known_column(store, table: str, column: str) -> str:
    if column not in columns_of(store, table) or column == "embedding":
        raise BadRequest(f"table {table!r} has no column {column!r} to colour by")
    return column


def integer(value: str | None, name: str, default: int, low: int, high: int) -> int:
    """A query parameter as an int in [low, high]; BadRequest naming the parameter otherwise."""
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number, got {value!r}") from None
    if not low <= number <= high:
        raise BadRequest(f"{name} must be between {low} and {high}, got {number}")
    return number
