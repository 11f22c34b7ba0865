"""The store's query API: DuckDB views over the Parquet parts. Probes read tables only through this.

    s = store.open("artstore")
    s.tables()                         # ['sample']
    s.sql("SELECT key, style FROM sample LIMIT 3")   # -> pyarrow.Table

Every table is a view whose `embedding` is typed FLOAT[dim], so `array_cosine_similarity` works directly.
Also defined: `failures` (table, key, shard, stage, error) and `catalog` (one row per table).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from artlens.store.catalog import Catalog, IndexEntry, TableEntry
from artlens.store.errors import UserError
from artlens.store.layout import StoreLayout
from artlens.store.parts import FAILURE_SCHEMA

if TYPE_CHECKING:  # FAISS is imported only where an index is used: writers and SQL never load it
    from artlens.store.index import LoadedIndex


#: Index fields shown in the `catalog` view, as index_<field>.
_INDEX_COLUMNS = ("kind", "factory", "params", "rows", "build_s", "memory_bytes", "recall_at_10", "updated")


class StoreError(UserError, RuntimeError):
    """A store, table or query that cannot be read as asked (no store there, no such table, SQL that fails)."""


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
        """Re-read the catalog and (re)define the views; new parts of known tables appear without it."""
        catalog = Catalog(self.layout.catalog_path)
        entries, indexes = catalog.entries(), catalog.indexes()
        self._entries = {e.name: e for e in entries}
        self._indexes = {}
        for entry in entries:
            self.con.execute(f'CREATE OR REPLACE VIEW "{entry.name}" AS {self._table_sql(entry)}')
        self.con.execute(f"CREATE OR REPLACE VIEW failures AS {self._failures_sql()}")
        self._register("_catalog_tables", TableEntry, entries)
        self._register("_catalog_indexes", IndexEntry, indexes)
        cols = ", ".join(f"i.{c} AS index_{c}" for c in _INDEX_COLUMNS)
        self.con.execute(f"CREATE OR REPLACE VIEW catalog AS SELECT t.*, {cols} FROM _catalog_tables t "
                         "LEFT JOIN _catalog_indexes i ON i.name = t.name")

    def _register(self, name: str, cls: type, rows: list) -> None:
        """Catalog rows as an Arrow table (typed from the dataclass even when there are none)."""
        empty = cls(name="")
        table = pa.Table.from_pylist([vars(r) for r in rows or [empty]])
        self.con.register(name, table if rows else table.slice(0, 0))

    def _table_sql(self, entry: TableEntry) -> str:
        glob = self.layout.parts_glob(entry.name)
        if not self.layout.parts(entry.name):
            return f"SELECT NULL::VARCHAR AS key, NULL::FLOAT[{entry.dim}] AS embedding WHERE false"
        return (f"SELECT * REPLACE (embedding::FLOAT[{entry.dim}] AS embedding) "
                f"FROM read_parquet({_quote(glob)}, union_by_name = true)")

    def _failures_sql(self) -> str:
        if not self.layout.failure_parts():
            cols = ", ".join(f'NULL::VARCHAR AS "{f.name}"' for f in FAILURE_SCHEMA)
            return f"SELECT {cols} WHERE false"
        return f"SELECT * FROM read_parquet({_quote(self.layout.failures_glob())}, union_by_name = true)"

    def tables(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, table: str) -> TableEntry:
        try:
            return self._entries[table]
        except KeyError:
            raise StoreError(f"no table {table!r} in {self.layout.root}; tables: {self.tables()}") from None

    def index(self, table: str) -> LoadedIndex | None:
        """The table's FAISS index (loaded once, brought up to date with new parts), or None."""
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


def _arrow(relation: duckdb.DuckDBPyRelation) -> pa.Table:
    to_table = getattr(relation, "to_arrow_table", None) or relation.arrow  # duckdb 2.x / 1.x
    return to_table()


def open(root: str | Path) -> Store:  # noqa: A001 - `store.open(path)` is the public API
    return Store(root)
