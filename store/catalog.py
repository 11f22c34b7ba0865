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
                rows = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM tables ORDER BY name").fetchall()
            except duckdb.CatalogException:  # a catalog file created by a run killed before its DDL
                return []
        return [TableEntry(**dict(zip(_COLUMNS, row))) for row in rows]

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
