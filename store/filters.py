"""User filters (`where=` of neighbours and probes, a suite file's `where:`): one SQL expression over a
table's columns, run where it can read nothing but the store and write nothing.

A filter is parsed on its own as one expression (`duckdb.SQLExpression`) and handed to DuckDB as that
parsed expression (`relation.filter`), never pasted into SQL text: `true); COPY ... ; SELECT ... (true`
or a second statement after `;` is refused before anything runs. A subquery may still read other tables
(`key IN (SELECT key FROM other)`), so filtered queries run on a second, locked-down connection of the
store: the same views, external access limited to the store's own folder (for a store at a URL: its local
mirror, into which the tables the filter names are fetched first), its configuration locked, Python
replacement scans and extension loading off. There
`read_csv('/etc/passwd')`, `read_text`, `glob`, `read_parquet('/elsewhere')` or a URL are refused, and a
single expression cannot write (COPY, ATTACH, EXPORT are statements). `artlens sql` stays a full SQL console
on the store's own connection: a user's own queries, not a filter.
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from artlens.store.errors import UserError

if TYPE_CHECKING:
    from artlens.store.query import Store

EXAMPLE = "e.g. \"style = 'Baroque'\""
#: The connection settings that keep a filter inside the store, set once its views exist, then locked.
_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False,
           "python_enable_replacements": False}


class FilterError(UserError):
    """A `where` filter that is not one SQL expression, reads outside the store, or does not apply."""

    def __init__(self, reason: str, text: str | None = None):
        self.reason, self.text = reason, text
        super().__init__(f"`where` {reason}", argument="where")


def _first_line(exc: Exception) -> str:
    """DuckDB's message in one line, without the `LINE 1: ...` excerpt of the query (not the user's text)."""
    lines = []
    for line in str(exc).strip().splitlines():
        if line.startswith("LINE "):
            break
        lines.append(line)
    return " ".join(" ".join(lines).split()) or type(exc).__name__


def expression(text: str) -> duckdb.Expression:
    """The filter parsed as exactly one SQL expression; FilterError for anything else.

    The text must parse alone and also inside parentheses: the first refuses a second statement, a
    break-out (`true) OR (1`) and unbalanced quotes; the second refuses what a parser would drop silently
    (an alias, `x FROM t`, a trailing `;`)."""
    if not isinstance(text, str) or not text.strip():
        raise FilterError(f"must be one SQL expression over the table's columns, {EXAMPLE}; got {text!r}", text)
    try:
        parsed = duckdb.SQLExpression(text)
        duckdb.SQLExpression(f"(\n{text}\n)")
    except (duckdb.Error, ValueError, TypeError) as exc:
        raise FilterError(f"must be one SQL expression over the table's columns, {EXAMPLE}; got {text!r} "
                          f"({_first_line(exc)})", text) from None
    return parsed


def check_filter(text: str) -> str:
    """The filter (stripped) when it is one SQL expression and nothing else; FilterError otherwise."""
    expression(text)
    return text.strip()


def quote_ident(name: str) -> str:
    """A table or column name as a quoted SQL identifier (the one place artlens quotes them)."""
    return '"' + name.replace('"', '""') + '"'


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _arrow(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    to_table = getattr(relation, "to_arrow_table", None) or relation.arrow  # duckdb 2.x / 1.x
    return to_table()


class _Locked:
    """A store's locked-down connection and what it was built from (rebuilt when the views change)."""

    def __init__(self, store: "Store"):
        self.views, self.registered = _views(store)
        self.con = duckdb.connect(":memory:", config=dict(_CONFIG))
        try:
            self._build(store)
        except BaseException:
            self.con.close()
            raise

    def _build(self, store: "Store") -> None:
        con = self.con
        for name, table in self.registered.items():  # Arrow tables the store registered (the catalog rows)
            con.register(name, table)
        for row in store.con.execute(
                "SELECT function_name, parameters, macro_definition FROM duckdb_functions() "
                "WHERE function_type = 'macro' AND NOT internal").fetchall():
            con.execute(f"CREATE MACRO {quote_ident(row[0])}({', '.join(map(quote_ident, row[1]))}) AS {row[2]}")
        pending = list(self.views)
        while pending:  # views over views: create those whose dependencies exist, until none are left
            failed = []
            for name, sql in pending:
                try:
                    con.execute(sql)
                except duckdb.CatalogException:
                    failed.append((name, sql))
            if len(failed) == len(pending):
                con.execute(failed[0][1])  # raises the real error
            pending = failed
        root = str(store.layout.root).rstrip("/") + "/"
        con.execute(f"SET allowed_directories = [{_quote(root)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")

    def current(self, store: "Store") -> bool:
        views, registered = _views(store)
        return views == self.views and registered.keys() == self.registered.keys() and all(
            registered[n].equals(self.registered[n]) for n in registered)


def _views(store: "Store") -> tuple[tuple[tuple[str, str], ...], dict[str, pa.Table]]:
    """The store connection's views (name, CREATE statement) and its registered Arrow tables."""
    rows = store.con.execute("SELECT view_name, sql, temporary FROM duckdb_views() WHERE NOT internal "
                             "ORDER BY view_name").fetchall()
    views = tuple((name, sql) for name, sql, temporary in rows if not temporary)
    registered = {name: _arrow(store.con.sql(f"SELECT * FROM {quote_ident(name)}"))
                  for name, _, temporary in rows if temporary and not name.startswith("_hits")}
    return views, registered


_LOCKED: "weakref.WeakKeyDictionary[Store, _Locked]" = weakref.WeakKeyDictionary()


def locked_connection(store: "Store") -> duckdb.DuckDBPyConnection:
    """The store's views on a connection that reads only files under the store's root and writes none."""
    locked = _LOCKED.get(store)
    if locked is None or not locked.current(store):
        if locked is not None:
            locked.con.close()
        locked = _LOCKED[store] = _Locked(store)
    return locked.con


def select_rows(store: "Store", table: str, columns: str, where: str | None, tail: str = "") -> pa.Table:
    """`SELECT {columns} FROM table {tail}` over the rows of `table` that pass the user's filter `where`.

    `columns` and `tail` (e.g. `WHERE x IS NOT NULL ORDER BY key`) are the caller's own SQL; `where` is
    the user's, applied as one parsed expression on the locked connection. Without `where` the query runs
    on the store's own connection, as any other."""
    store.entry(table)  # no such table: says so and lists the store's tables
    if not where:
        return store.sql(f"SELECT {columns} FROM {quote_ident(table)} {tail}")
    parsed = expression(where)
    # a store at a URL: fetch the tables the filter names too (the text is only parsed for its table names
    # here, never run; it was checked above to be one expression)
    store.prepare(f"SELECT * FROM {quote_ident(table)} WHERE (\n{where}\n)")
    con = locked_connection(store)
    try:
        relation = con.sql(f"SELECT * FROM {quote_ident(table)}").filter(parsed)
        return _arrow(relation.query("_filtered", f"SELECT {columns} FROM _filtered {tail}"))
    except duckdb.PermissionException as exc:
        raise FilterError(f"may read only the store's own tables ({store.layout.root}), not other files: "
                          f"{where.strip()!r} ({_first_line(exc)})", where) from None
    except duckdb.Error as exc:
        raise FilterError(f"{where.strip()!r} does not apply to table {table!r}: {_first_line(exc)}",
                          where) from None
