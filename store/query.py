"""The store's query API: DuckDB views over the Parquet parts. Probes read tables only through this.

    s = store.open("artstore")
    s.tables()                         # ['sample']
    s.sql("SELECT key, style FROM sample LIMIT 3")   # -> pyarrow.Table

Every table is a view whose `embedding` is typed FLOAT[dim], so `array_cosine_similarity` works directly.
Also defined: `failures` (table, key, shard, stage, error) and `catalog` (one row per table).

A key table (no embeddings: the near-duplicate groups of `artlens dedup`, kind `duplicates`, `parent` T) is
a view of its rows; T's view then also carries its `dup_group` (a LEFT JOIN on key; a row of T the groups do
not cover, added since, is its own group and the store warns that they are stale).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from artlens.store.catalog import DUP_GROUP_COLUMN, DUPLICATES_KIND, Catalog, IndexEntry, TableEntry
from artlens.store.errors import ArtlensWarning, UserError
from artlens.store.layout import LayoutError, StoreLayout, check_table_name
from artlens.store.parts import FAILURE_SCHEMA, fold

if TYPE_CHECKING:  # FAISS is imported only where an index is used: writers and SQL never load it
    from artlens.store.index import LoadedIndex


#: Index fields shown in the `catalog` view, as index_<field>.
_INDEX_COLUMNS = ("kind", "factory", "params", "rows", "build_s", "memory_bytes", "recall_at_10", "updated")


class StoreError(UserError, RuntimeError):
    """A store, table or query that cannot be read as asked (no store there, no such table, SQL that fails)."""


class StoreWarning(ArtlensWarning):
    """A store whose files and catalog disagree (a part gone, parts the catalog does not know): queries run
    on the files that are there; the message names the table, both counts and `artlens repair`."""


def _quote(path: str) -> str:
    return "'" + path.replace("'", "''") + "'"


class Store:
    def __init__(self, root: str | Path):
        self.layout = StoreLayout.at(root)
        if not self.layout.root.exists():
            raise StoreError(f"no store at {self.layout.root} (run `artlens extract --store {root}` first)")
        self.con = duckdb.connect(":memory:")
        self._entries: dict[str, TableEntry] = {}
        self._indexes: dict[str, LoadedIndex | None] = {}
        self._damaged: dict[str, str] = {}
        self._duplicates: dict[str, str] = {}
        self._repair = f"artlens repair --store {root}"
        self._define_functions()
        self.refresh()

    def _define_functions(self) -> None:
        """`cosine(a, b)` and `neighbors(table, embedding, k) -> VARCHAR[]` (keys, best first, via the index)."""
        from duckdb import list_type, sqltypes as t

        self.con.execute("CREATE MACRO cosine(a, b) AS array_cosine_similarity(a, b)")

        def neighbor_keys(table: str, embedding: list, k: int) -> list:
            from artlens.store.neighbors import search

            return [hit[0] for hit in search(self, table, embedding, int(k))]

        self.con.create_function("neighbors", neighbor_keys, [t.VARCHAR, list_type(t.FLOAT), t.INTEGER],
                                 list_type(t.VARCHAR), side_effects=False)

    def refresh(self) -> None:
        """Re-read the catalog and (re)define the views; new parts of known tables appear without it.

        A view whose parts cannot be read (a truncated part) is replaced by one whose every query fails naming
        the part and the repair, so `SELECT 1`, the other tables and their imports still work; that costs
        nothing more than before (DuckDB reads the footers to define a view anyway; the parts are searched
        for the damaged one only when that fails). A table with fewer parts than the catalog counted, and
        parts the catalog does not know, warn (StoreWarning)."""
        catalog = Catalog(self.layout.catalog_path)
        entries, indexes = catalog.entries(), catalog.indexes()
        self._entries = {e.name: e for e in entries}
        self._indexes = {}
        self._damaged = {}
        self._duplicates = {}
        table_parts = {}
        for entry in entries:
            parts = table_parts[entry.name] = self.layout.parts(entry.name)
            self._define(entry.name, self._table_sql(entry, parts), parts, f"table {entry.name!r}",
                         _table_columns(entry.dim, entry.has_embeddings))
            if entry.name not in self._damaged:
                self._check_counts(entry, parts)
        for entry in entries:
            if entry.kind == DUPLICATES_KIND and entry.parent in self._entries:
                self._join_duplicates(self._entries[entry.parent], entry, table_parts)
        self._define_uncatalogued(catalog)
        failure_parts = self.layout.failure_parts()
        self._define("failures", self._failures_sql(failure_parts), failure_parts, "the `failures` view",
                     {f.name: "VARCHAR" for f in FAILURE_SCHEMA}, noun="failures part")
        self._register("_catalog_tables", TableEntry, entries)
        self._register("_catalog_indexes", IndexEntry, indexes)
        cols = ", ".join(f"i.{c} AS index_{c}" for c in _INDEX_COLUMNS)
        self.con.execute(f"CREATE OR REPLACE VIEW catalog AS SELECT t.*, {cols} FROM _catalog_tables t "
                         "LEFT JOIN _catalog_indexes i ON i.name = t.name")

    def _join_duplicates(self, parent: TableEntry, dups: TableEntry, table_parts: dict[str, list[Path]]) -> None:
        """Give the parent's view the `dup_group` of its duplicates table (LEFT JOIN on key; a row not covered
        is its own group). Skipped, with a warning, when the parent has a column of that name itself; skipped
        silently when either view cannot be read (its queries say why) or the groups have no part yet."""
        name = parent.name
        if name in self._damaged or dups.name in self._damaged or not table_parts.get(dups.name):
            return
        if not table_parts.get(name):
            return
        columns = [c for c, *_ in self.con.execute(f'DESCRIBE "{name}"').fetchall()]
        if fold(DUP_GROUP_COLUMN) in map(fold, columns):
            warnings.warn(StoreWarning(
                f"table {name!r} has a column {DUP_GROUP_COLUMN!r} of its own, so the near-duplicate groups of "
                f"{dups.name!r} are not joined into its view; query them from {dups.name!r}"), stacklevel=4)
            return
        base = self._table_sql(parent, table_parts[name])
        sql = (f'SELECT t.*, coalesce(d.{DUP_GROUP_COLUMN}, t.key) AS {DUP_GROUP_COLUMN} FROM ({base}) t '
               f'LEFT JOIN "{dups.name}" d ON d.key = t.key')
        try:
            self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')
        except duckdb.Error as exc:  # e.g. a duplicates part without the columns: the parent stays as it was
            warnings.warn(StoreWarning(f"the near-duplicate groups {dups.name!r} cannot be joined to table "
                                       f"{name!r} ({_one_line(exc)}); re-run `artlens dedup`"), stacklevel=4)
            self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {base}')
            return
        self._duplicates[name] = dups.name
        if parent.rows and dups.rows != parent.rows:
            warnings.warn(StoreWarning(
                f"table {name!r} holds {_n(parent.rows, 'row')} but its near-duplicate groups {dups.name!r} "
                f"were found among {_n(dups.rows, 'row')}: rows added since are each their own group; re-run "
                f"`artlens dedup --store {self.layout.root} --table {name}`"), stacklevel=4)

    def duplicates_of(self, table: str) -> str | None:
        """The duplicates table whose `dup_group` the view of `table` carries, or None."""
        return self._duplicates.get(table)

    def _register(self, name: str, cls: type, rows: list) -> None:
        """Catalog rows as an Arrow table (typed from the dataclass even when there are none)."""
        empty = cls(name="")
        table = pa.Table.from_pylist([vars(r) for r in rows or [empty]])
        self.con.register(name, table if rows else table.slice(0, 0))

    def _table_sql(self, entry: TableEntry, parts: list[Path] | None = None) -> str:
        glob = self.layout.parts_glob(entry.name)
        empty = not (self.layout.parts(entry.name) if parts is None else parts)
        if not entry.has_embeddings:  # a key table: its columns as written
            return ("SELECT NULL::VARCHAR AS key WHERE false" if empty
                    else f"SELECT * FROM read_parquet({_quote(glob)}, union_by_name = true)")
        if empty:
            return f"SELECT NULL::VARCHAR AS key, NULL::FLOAT[{entry.dim}] AS embedding WHERE false"
        return (f"SELECT * REPLACE (embedding::FLOAT[{entry.dim}] AS embedding) "
                f"FROM read_parquet({_quote(glob)}, union_by_name = true)")

    def _failures_sql(self, parts: list[Path] | None = None) -> str:
        if not (self.layout.failure_parts() if parts is None else parts):
            return f"SELECT {_FAILURE_COLUMNS} WHERE false"
        return f"SELECT * FROM read_parquet({_quote(self.layout.failures_glob())}, union_by_name = true)"

    def _define(self, name: str, sql: str, parts: list[Path], what: str, columns: dict[str, str],
                noun: str = "part") -> None:
        """The view `name` over `parts`; if DuckDB cannot define it, a view whose every query fails with one
        line naming the unreadable part(s) and the repair (its columns those of the readable parts, else
        `columns`, so that queries naming them reach the message)."""
        try:
            self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')
        except duckdb.Error as exc:
            bad = _unreadable(parts)  # the footers one by one: only once defining the view failed
            self._damaged[name] = self._damage_message(what, bad, exc, noun)
            unread = {path for path, _ in bad}
            self._failing_view(name, self._damaged[name], [p for p in parts if p not in unread], columns)

    def _failing_view(self, name: str, message: str, parts: list[Path], columns: dict[str, str]) -> None:
        """A view of one row whose every column, and its filter, call error(): DuckDB runs it per row, not
        when the view is defined, and cannot prune it, so every query that reads the view fails with it."""
        found = {}
        if parts:
            try:
                found = {c: t for c, t, *_ in self.con.execute(
                    "DESCRIBE SELECT * FROM read_parquet(?, union_by_name = true)", [[str(p) for p in parts]]
                ).fetchall()}
            except duckdb.Error:
                found = {}
        merged = {**found, **{c: t for c, t in columns.items() if c not in found or c == "embedding"}}
        fail = f"error({_quote(message)})"  # (embedding: the view's own type, FLOAT[dim])
        for cols in (merged, columns):  # a type DuckDB cannot cast NULL to: the plain columns
            select = ", ".join(f'{fail}::{t} AS "{c.replace(chr(34), chr(34) * 2)}"' for c, t in cols.items())
            try:
                self.con.execute(f'CREATE OR REPLACE VIEW "{name}" AS SELECT {select} FROM range(1) '
                                 f"WHERE {fail} IS NULL")
                return
            except duckdb.Error:
                continue

    def _damage_message(self, what: str, bad: list[tuple[Path, Exception]], exc: Exception, noun: str) -> str:
        if not bad:
            return f"{what} cannot be read: {_one_line(exc)}"
        named = ", ".join(str(p) for p, _ in bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        reason = _one_line(bad[0][1]).split(". ")[0]
        return (f"{what} cannot be read: {noun}{'' if len(bad) == 1 else 's'} {named} "
                f"{'is' if len(bad) == 1 else 'are'} damaged ({reason}); run `{self._repair}` to move "
                f"unreadable parts into {self.layout.quarantine_dir()} and recount, then re-run the extract "
                "or import that wrote them to restore their rows")

    def _check_counts(self, entry: TableEntry, parts: list[Path]) -> None:
        """Warn when the parts hold fewer rows than the catalog counted. Free when as many parts are there
        as were counted (more: an extraction is adding some); else one DuckDB query over the footers."""
        if entry.rows <= 0 or (entry.parts and len(parts) >= entry.parts):
            return
        try:
            found = self.con.execute("SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)",
                                     [[str(p) for p in parts]]).fetchone()[0] if parts else 0
        except duckdb.Error:  # a part vanished meanwhile: the next open tells
            return
        if found >= entry.rows and len(parts) >= entry.parts:
            return
        counted = _n(entry.rows, "row") + (f" in {_n(entry.parts, 'part')}" if entry.parts else "")
        warnings.warn(StoreWarning(
            f"table {entry.name!r}: the catalog counts {counted} but {self.layout.table_dir(entry.name)} holds "
            f"{_n(found, 'row')} in {_n(len(parts), 'part')}, so a part was deleted or moved and queries see "
            f"only the rows that are there: put the part back, or run `{self._repair}` to recount the table "
            "(then re-run the extract or import that wrote it to restore its rows)"), stacklevel=3)

    def _define_uncatalogued(self, catalog: Catalog) -> None:
        """Folders of parts the catalog does not know (the catalog was deleted or replaced): a warning, and a
        view of each name whose queries say to run the repair."""
        def orphans(known) -> list[str]:
            found = []
            for name in self.layout.tables_on_disk():
                try:
                    if name not in known and self.layout.parts(check_table_name(name)):
                        found.append(name)
                except LayoutError:  # a folder that is no table of ours
                    continue
            return found

        names = orphans(self._entries)
        if names:  # a writer may have created a table since the catalog was read: read it again
            names = orphans({e.name for e in catalog.entries()})
        if not names:
            return
        why = (f"the catalog {catalog.path} has no entry for {'it' if len(names) == 1 else 'them'}"
               if catalog.exists()
               else f"the catalog {catalog.path} is missing")
        fix = f"run `{self._repair}` to rebuild the catalog from the parts"
        warnings.warn(StoreWarning(
            f"{'table' if len(names) == 1 else 'tables'} {', '.join(map(repr, names))} "
            f"{'has' if len(names) == 1 else 'have'} parts in {self.layout.root / 'tables'} but {why}: {fix}"),
            stacklevel=3)
        for name in names:
            self._damaged[name] = (f"table {name!r} has parts in {self.layout.table_dir(name)} but no catalog "
                                   f"entry ({why}): {fix}")
            self._failing_view(name, self._damaged[name], self.layout.parts(name), _table_columns(0))

    def damaged(self) -> dict[str, str]:
        """View name → why its queries fail (unreadable parts, parts without a catalog entry)."""
        return dict(self._damaged)

    def tables(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, table: str) -> TableEntry:
        try:
            return self._entries[table]
        except KeyError:
            raise StoreError(f"no table {table!r} in {self.layout.root}; tables: {self.tables()}") from None

    def index(self, table: str) -> LoadedIndex | None:
        """The table's FAISS index (loaded once, brought up to date with new parts), or None."""
        if table in self._damaged:
            raise StoreError(self._damaged[table])
        if table not in self._indexes:
            from artlens.store.index import open_index

            self._indexes[table] = open_index(self.layout.root, table, self.entry(table).dim)
        return self._indexes[table]

    def neighbors(self, table: str, key: str | None = None, vector=None, k: int = 10,
                  where: str | None = None) -> pa.Table:
        """The k rows nearest to a row (`key`, itself excluded) or to a vector, best first, with metadata."""
        from artlens.store.neighbors import neighbors_table, query_vector, search

        if (key is None) == (vector is None):
            raise StoreError("give exactly one of key= or vector=")
        exclude = {key} if key is not None else set()
        query = query_vector(self, table, key) if key is not None else vector
        return neighbors_table(self, table, search(self, table, query, k, where, exclude))

    def save_result(self, name: str, result: dict) -> Path:
        """Keep a probe result (JSON) in the store, replacing one of the same name atomically."""
        path = self.layout.result_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}")
        tmp.write_text(json.dumps(result, indent=1))
        tmp.replace(path)
        self.layout.push(path)
        return path

    def results(self) -> list[dict]:
        """Every probe result kept in the store, by file name."""
        directory = self.layout.results_dir()
        paths = sorted(directory.glob("*.json")) if directory.exists() else []
        return [json.loads(p.read_text()) for p in paths]

    def sql(self, query: str, params: list | None = None) -> pa.Table:
        try:
            relation = self.con.sql(query, params=params)
            if relation is None:  # a statement (CREATE, SET, ...) returns no rows
                return pa.table({})
            return _arrow(relation)
        except duckdb.Error as exc:
            raise StoreError(f"query failed: {exc}") from exc

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_FAILURE_COLUMNS = ", ".join(f'NULL::VARCHAR AS "{f.name}"' for f in FAILURE_SCHEMA)


def _table_columns(dim: int, embeddings: bool = True) -> dict[str, str]:
    if not embeddings:
        return {"key": "VARCHAR"}
    return {"key": "VARCHAR", "shard": "VARCHAR", "embedding": f"FLOAT[{dim if dim > 0 else ''}]"}


def _unreadable(parts: list[Path]) -> list[tuple[Path, Exception]]:
    """The parts whose Parquet footer cannot be read, with why."""
    bad = []
    for path in parts:
        try:
            pq.read_metadata(path)
        except FileNotFoundError:  # gone since the glob (a table being replaced): not damage
            continue
        except Exception as err:  # noqa: BLE001 - truncated, empty, not Parquet: any reason is damage
            bad.append((path, err))
    return bad


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _arrow(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    to_table = getattr(relation, "to_arrow_table", None) or relation.arrow  # duckdb 2.x / 1.x
    return to_table()


def open(root: str | Path) -> Store:  # noqa: A001 - `store.open(path)` is the public API
    return Store(root)
