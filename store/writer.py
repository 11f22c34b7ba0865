"""The one way embeddings enter a store: per-shard parts committed atomically, then the catalog updated.

Protocol for each shard: write its failures part (if any), then its embedding part; the embedding part's
rename is the commit. A shard whose embedding part exists is complete and is skipped on resume; a shard
killed before that rename is redone from scratch, overwriting any failures part it had left.
"""
from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow.parquet as pq

from artlens.store.catalog import Catalog, CatalogError, TableEntry
from artlens.store.layout import StoreLayout
from artlens.store.parts import failures_table, rows_to_table, write_atomic

CONFLICTS_KEY = "artlens.conflicts"


class TableWriter:
    def __init__(self, root: str | Path, entry: TableEntry, overwrite: bool = False):
        self.layout = StoreLayout.at(root)
        self.layout.table_dir(entry.name)  # validates the name
        self.catalog = Catalog(self.layout.catalog_path)
        self.entry = self._open_entry(entry, overwrite)
        for tmp in self.layout.stale_temporaries(entry.name):
            tmp.unlink(missing_ok=True)

    def _open_entry(self, entry: TableEntry, overwrite: bool) -> TableEntry:
        existing = self.catalog.get(entry.name)
        has_parts = bool(self.layout.parts(entry.name))
        if existing is not None and not overwrite:
            diff = existing.mismatches(entry)
            if diff:
                lines = "; ".join(f"{k}: table has {a!r}, this run has {b!r}" for k, (a, b) in diff.items())
                raise CatalogError(
                    f"table {entry.name!r} was made with different settings ({lines}). "
                    "Use another `table`, or `overwrite` to replace it.", argument=("table", "overwrite"))
            entry.created = existing.created
        elif existing is None and has_parts and not overwrite:
            raise CatalogError(f"table {entry.name!r} has parts but no catalog entry; use `overwrite`",
                               argument="overwrite")
        if overwrite:
            self.drop(entry.name)
        self.catalog.put(entry)
        self.layout.push_catalog()
        return entry

    def drop(self, name: str) -> None:
        dirs = (self.layout.table_dir(name), self.layout.failures_dir(name), self.layout.index_dir(name))
        for directory in dirs:
            shutil.rmtree(directory, ignore_errors=True)
        if self.layout.remote is not None:
            self.layout.remote.delete(*dirs)
        self.catalog.delete(name)
        self.layout.push_catalog()

    def is_done(self, shard_url: str) -> bool:
        return self.layout.part_path(self.entry.name, shard_url).exists()

    def record_failures(self, shard_url: str, failures: Sequence[dict]) -> None:
        """Failures of a shard that could not be read at all: visible in `failures`, shard not committed."""
        path = self.layout.failures_path(self.entry.name, shard_url)
        write_atomic(failures_table(self.entry.name, failures), path)
        self.layout.push(path)

    def commit(self, shard_url: str, rows: Sequence[dict], vectors: np.ndarray,
               failures: Sequence[dict]) -> dict[str, str]:
        """Commit one shard. Returns the columns whose types had to be kept as text in this part."""
        table = self.entry.name
        fail_path = self.layout.failures_path(table, shard_url)
        if failures:
            write_atomic(failures_table(table, failures), fail_path)
        else:
            fail_path.unlink(missing_ok=True)
        part, conflicts = rows_to_table(rows, vectors, self.entry.dim)
        meta = {CONFLICTS_KEY: json.dumps(conflicts)}
        part_path = self.layout.part_path(table, shard_url)
        write_atomic(part, part_path, metadata=meta)
        self.layout.push(fail_path, part_path)  # failures first: the embedding part is the commit
        return conflicts

    @classmethod
    def reopen(cls, root: str | Path, name: str) -> "TableWriter":
        """A writer for a table that exists (e.g. to recount it after other processes committed parts)."""
        entry = Catalog(StoreLayout.at(root).catalog_path).get(name)
        if entry is None:
            raise CatalogError(f"no table {name!r} in the catalog of {root}")
        return cls(root, entry)

    def finish(self) -> TableEntry:
        """Recount rows and failures from the committed parts and record schema conflicts."""
        name = self.entry.name
        parts = self.layout.parts(name)
        self.entry.rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
        self.entry.failures = sum(pq.ParquetFile(p).metadata.num_rows for p in self.layout.failure_parts(name))
        self.entry.schema_conflicts = json.dumps(schema_conflicts(parts), sort_keys=True)
        self.catalog.put(self.entry)
        self.layout.push_catalog()
        return self.entry


def schema_conflicts(parts: Sequence[Path]) -> dict[str, str]:
    """Columns whose type differs across parts (or was mixed inside one), with what happened to them."""
    types: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    within: dict[str, str] = {}
    for path in parts:
        schema = pq.read_schema(path)
        for fld in schema:
            if str(fld.type) != "null":
                types[fld.name][str(fld.type)] += 1
        raw = (schema.metadata or {}).get(CONFLICTS_KEY.encode())
        if raw:
            within.update(json.loads(raw))
    report = dict(within)
    for name, seen in types.items():
        if len(seen) > 1 and not all(_numeric(t) for t in seen):
            counts = ", ".join(f"{t} in {n} part(s)" for t, n in sorted(seen.items()))
            report[name] = f"types differ across parts ({counts}); read as text"
    return report


def _numeric(type_name: str) -> bool:
    return type_name.startswith(("int", "uint", "double", "float", "bool"))
