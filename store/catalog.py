"""The store's catalog (`catalog.duckdb`): how each table's embeddings were made, and its indexes.

Two DuckDB tables: `tables` (one row per embedding table) and `indexes` (one row per table's FAISS index).
The file is opened only for the moment of a read or write, so readers and a running extraction can share
it; a lock held by another process is waited for briefly. Columns come from the dataclasses below, so a
catalog written by an older artlens gains new columns when it is next written.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, TypeVar

import duckdb

from artlens.store.errors import UserError

#: The fields that define what an embedding means; a table may only grow with the same values.
IDENTITY_FIELDS = ("model", "pretrained", "checkpoint_sha256", "preprocess", "dim", "parent")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CatalogError(UserError, RuntimeError):
    """A catalog that refuses the operation: settings that differ from a table's, a linked table, a lock held."""


@dataclass
class TableEntry:
    name: str
    kind: str = "image"
    model: str = ""
    model_ref: str = ""               # what to pass to open_clip to load the model again (name or config path)
    pretrained: str = ""
    checkpoint_sha256: str | None = None
    preprocess: str = ""
    dim: int = 0
    dtype: str = "float32"
    rows: int = 0
    failures: int = 0
    schema_conflicts: str = "{}"
    source: str = ""
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)
    artlens_version: str = ""
    #: A linked table: its `key` column holds keys of this table, several rows per key (e.g. a deformation
    #: table: one row per deformation and severity of each painting of the parent). Empty: keys are unique.
    parent: str = ""

    def identity(self) -> dict:
        return {k: getattr(self, k) for k in IDENTITY_FIELDS}

    def mismatches(self, other: "TableEntry") -> dict:
        mine, theirs = self.identity(), other.identity()
        return {k: (mine[k], theirs[k]) for k in IDENTITY_FIELDS if mine[k] != theirs[k]}

    def conflicts(self) -> dict:
        return json.loads(self.schema_conflicts or "{}")

    def unique_keys_needed(self, what: str) -> None:
        """Refuse `what` (e.g. an index) for a linked table, whose keys name several rows each."""
        if self.parent:
            raise CatalogError(
                f"table {self.name!r} is a {self.kind!r} table of {self.parent!r}: its `key` column holds "
                f"{self.parent!r}'s keys, several rows each, so {what} (which map one key to one row) do not "
                f"apply to it; query it with SQL, joined to {self.parent!r} on key")


@dataclass
class IndexEntry:
    name: str                         # the table this index serves
    kind: str = ""                    # flat | hnsw | ivfpq | factory
    factory: str = ""                 # the FAISS factory string
    params: str = "{}"                # JSON: search parameters chosen (efSearch, nprobe, ...)
    generation: str = ""              # names the index files under indexes/<table>/
    rows: int = 0
    parts: str = "{}"                 # JSON {part file name: size in bytes}: the table state it covers
    build_s: float = 0.0
    memory_bytes: int = 0
    recall_at_10: float | None = None
    recall_queries: int = 0
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)

    def covered(self) -> dict[str, int]:
        return json.loads(self.parts or "{}")

    def search_params(self) -> dict:
        return json.loads(self.params or "{}")


_SQL_TYPES = {str: "VARCHAR", "str": "VARCHAR", "str | None": "VARCHAR", "int": "BIGINT", "float": "DOUBLE",
              "float | None": "DOUBLE", "datetime": "TIMESTAMPTZ"}
_TABLES = {"tables": TableEntry, "indexes": IndexEntry}
E = TypeVar("E", TableEntry, IndexEntry)


def _ddl(table: str) -> list[str]:
    cols = [(f.name, _SQL_TYPES[f.type]) for f in fields(_TABLES[table])]
    create = f"CREATE TABLE IF NOT EXISTS {table} (name VARCHAR PRIMARY KEY)"
    return [create] + [f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {n} {t}" for n, t in cols if n != "name"]


class Catalog:
    def __init__(self, path: Path, timeout_s: float = 30.0):
        self.path = Path(path)
        self.timeout_s = timeout_s

    @contextmanager
    def _connect(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.path.exists():
            con = duckdb.connect(":memory:")
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = self._connect_with_retry(read_only)
        try:
            if not read_only:
                for table in _TABLES:
                    for statement in _ddl(table):
                        con.execute(statement)
            yield con
        finally:
            con.close()

    def _connect_with_retry(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:  # another process holds the write lock
                if time.monotonic() > deadline:
                    raise CatalogError(f"catalog {self.path} stayed locked for {self.timeout_s:.0f}s: {exc}")
                time.sleep(0.05)

    def _read(self, table: str) -> list:
        cls = _TABLES[table]
        known = {f.name for f in fields(cls)}
        with self._connect(read_only=True) as con:
            try:
                cursor = con.execute(f"SELECT * FROM {table} ORDER BY name")
            except duckdb.CatalogException:  # no such table yet (new or older catalog)
                return []
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return [cls(**{k: v for k, v in zip(names, row) if k in known and v is not None}) for row in rows]

    def _write(self, table: str, entry) -> None:
        entry.updated = _now()
        values = asdict(entry)
        cols = list(values)
        with self._connect(read_only=False) as con:
            con.execute(f"DELETE FROM {table} WHERE name = ?", [entry.name])
            con.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                        [values[c] for c in cols])

    def _delete(self, table: str, name: str) -> None:
        with self._connect(read_only=False) as con:
            con.execute(f"DELETE FROM {table} WHERE name = ?", [name])

    # tables
    def entries(self) -> list[TableEntry]:
        return self._read("tables")

    def get(self, name: str) -> TableEntry | None:
        return next((e for e in self.entries() if e.name == name), None)

    def put(self, entry: TableEntry) -> None:
        self._write("tables", entry)

    def delete(self, name: str) -> None:
        self._delete("tables", name)
        self._delete("indexes", name)

    # indexes
    def indexes(self) -> list[IndexEntry]:
        return self._read("indexes")

    def get_index(self, table: str) -> IndexEntry | None:
        return next((e for e in self.indexes() if e.name == table), None)

    def put_index(self, entry: IndexEntry) -> None:
        self._write("indexes", entry)
