"""The store's catalog (`catalog.duckdb`): one row per table describing how its embeddings were made.

The file is opened only for the moment of a read or write, so readers and a running extraction can share
it; a lock held by another process is waited for briefly.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import duckdb

_DDL = """
CREATE TABLE IF NOT EXISTS tables (
    name VARCHAR PRIMARY KEY,
    kind VARCHAR,
    model VARCHAR,
    model_ref VARCHAR,
    pretrained VARCHAR,
    checkpoint_sha256 VARCHAR,
    preprocess VARCHAR,
    dim INTEGER,
    dtype VARCHAR,
    rows BIGINT,
    failures BIGINT,
    schema_conflicts VARCHAR,
    source VARCHAR,
    created TIMESTAMPTZ,
    updated TIMESTAMPTZ,
    artlens_version VARCHAR
)
"""

#: The fields that define what an embedding means; a table may only grow with the same values.
IDENTITY_FIELDS = ("model", "pretrained", "checkpoint_sha256", "preprocess", "dim")


class CatalogError(RuntimeError):
    pass


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
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    updated: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    artlens_version: str = ""

    def identity(self) -> dict:
        return {k: getattr(self, k) for k in IDENTITY_FIELDS}

    def mismatches(self, other: "TableEntry") -> dict:
        mine, theirs = self.identity(), other.identity()
        return {k: (mine[k], theirs[k]) for k in IDENTITY_FIELDS if mine[k] != theirs[k]}

    def conflicts(self) -> dict:
        return json.loads(self.schema_conflicts or "{}")


_COLUMNS = [f.name for f in fields(TableEntry)]


def _added_columns() -> list[tuple[str, str]]:
    """Columns of the DDL, for adding to an older catalog file (new columns are appended here)."""
    lines = [ln.strip().rstrip(",").split() for ln in _DDL.splitlines()[2:-1]]
    return [(ln[0], ln[1]) for ln in lines if ln and ln[0] in _COLUMNS and ln[0] != "name"]


class Catalog:
    def __init__(self, path: Path, timeout_s: float = 30.0):
        self.path = Path(path)
        self.timeout_s = timeout_s

    @contextmanager
    def _connect(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        if read_only and not self.path.exists():
            con = duckdb.connect(":memory:")
            con.execute(_DDL)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = self._connect_with_retry(read_only)
            if not read_only:
                con.execute(_DDL)
                for name, sql_type in _added_columns():  # catalogs written by older artlens versions
                    con.execute(f"ALTER TABLE tables ADD COLUMN IF NOT EXISTS {name} {sql_type}")
        try:
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

    def entries(self) -> list[TableEntry]:
        with self._connect(read_only=True) as con:
            try:
                cursor = con.execute("SELECT * FROM tables ORDER BY name")
            except duckdb.CatalogException:  # a catalog file created by a run killed before its DDL
                return []
            names = [d[0] for d in cursor.description]
            rows = cursor.fetchall()
        return [TableEntry(**{k: v for k, v in zip(names, row) if k in _COLUMNS and v is not None})
                for row in rows]

    def get(self, name: str) -> TableEntry | None:
        return next((e for e in self.entries() if e.name == name), None)

    def put(self, entry: TableEntry) -> None:
        entry.updated = datetime.now(timezone.utc)
        values = asdict(entry)
        with self._connect(read_only=False) as con:
            con.execute("DELETE FROM tables WHERE name = ?", [entry.name])
            con.execute(
                f"INSERT INTO tables ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})",
                [values[c] for c in _COLUMNS],
            )

    def delete(self, name: str) -> None:
        with self._connect(read_only=False) as con:
            con.execute("DELETE FROM tables WHERE name = ?", [name])
