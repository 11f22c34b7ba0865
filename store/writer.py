"""The one way embeddings enter a store: per-shard parts committed atomically, then the catalog updated.

Protocol for each shard: write its failures part (if any), then its embedding part; the embedding part's
rename is the commit. A shard whose embedding part exists and is readable (its Parquet footer reads) is
complete and is skipped on resume; a shard killed before that rename, or whose part cannot be read (a
truncated file), is redone from scratch, overwriting any failures part it had left, its unreadable part moved
to quarantine/ first. A part is named by the shard's id (store/layout.py `shard_id`: the file's name, size and
ends, so a moved shard keeps it); a part named by the id of earlier versions (the URL hash) still counts.
"""
from __future__ import annotations

import json
import shutil
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from artlens.store.catalog import Catalog, CatalogError, TableEntry
from artlens.store.errors import ArtlensWarning
from artlens.store.layout import StoreLayout
from artlens.store.parts import failures_table, rows_to_table, write_atomic

CONFLICTS_KEY = "artlens.conflicts"
#: Every part (and failures part) carries its table's description (`TableEntry.description`, JSON) under this
#: key of its Parquet metadata: `artlens repair` rebuilds a lost catalog from the newest part.
DESCRIPTION_KEY = "artlens"


class TableWriter:
    def __init__(self, root: str | Path, entry: TableEntry, overwrite: bool = False):
        self.layout = StoreLayout.at(root)
        self.layout.table_dir(entry.name)  # validates the name
        self.catalog = Catalog(self.layout.catalog_path)
        self.entry = self._open_entry(entry, overwrite)
        self._described = {DESCRIPTION_KEY: json.dumps(self.entry.description(), sort_keys=True)}
        self._keys: dict[str, str] | None = None     # committed_keys(), once asked for
        self._key_parts: set[str] = set()
        for tmp in self.layout.stale_temporaries(entry.name):
            tmp.unlink(missing_ok=True)

    def _open_entry(self, entry: TableEntry, overwrite: bool) -> TableEntry:
        existing = self.catalog.get(entry.name)
        if existing is None:  # DuckDB (and some file systems) match names ignoring case: `Art` would be `art`
            twin = next((e.name for e in self.catalog.entries()  # (the same name: another process made it meanwhile)
                         if e.name != entry.name and e.name.lower() == entry.name.lower()), None)
            if twin is not None:
                raise CatalogError(f"table {entry.name!r} differs from the store's table {twin!r} only in case, "
                                   "and SQL names ignore case: use another `table` name", argument="table")
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
            raise CatalogError(
                f"table {entry.name!r} has parts but no catalog entry: run `artlens repair --store "
                f"{self.layout.root}` to rebuild the catalog from its parts, or use `overwrite` to delete them",
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
        """Whether the shard is committed: a readable part under its id or its id of earlier versions."""
        return committed_part(self.layout, self.entry.name, shard_url) is not None

    def committed_keys(self) -> dict[str, str]:
        """Key → shard of the rows the table's committed parts hold. Read once (the key and shard columns of
        every readable part), then only the parts that appeared since (other processes' commits) and kept up
        to date by `commit`."""
        if self._keys is None:
            self._keys, self._key_parts = {}, set()
        for path in self.layout.parts(self.entry.name):
            if path.name not in self._key_parts:
                try:
                    part = pq.read_table(path, columns=["key", "shard"])
                except (OSError, pa.ArrowException, KeyError):
                    continue  # unreadable: its shard is redone, its keys are not the table's
                self._key_parts.add(path.name)
                shards = part["shard"].combine_chunks().dictionary_encode()
                names = shards.dictionary.to_pylist()
                self._keys.update(zip(part["key"].to_pylist(),
                                      (names[i] if i is not None else None for i in shards.indices.to_pylist())))
        return self._keys

    def record_failures(self, shard_url: str, failures: Sequence[dict]) -> None:
        """Failures of a shard that could not be read at all: visible in `failures`, shard not committed."""
        path = self.layout.failures_path(self.entry.name, shard_url)
        write_atomic(failures_table(self.entry.name, failures), path, metadata=self._described)
        self.layout.push(path)

    def commit(self, shard_url: str, rows: Sequence[dict], vectors: np.ndarray,
               failures: Sequence[dict]) -> dict[str, str]:
        """Commit one shard. Returns the columns whose types had to be kept as text in this part."""
        table = self.entry.name
        fail_path = self.layout.failures_path(table, shard_url)
        if failures:
            write_atomic(failures_table(table, failures), fail_path, metadata=self._described)
        else:
            fail_path.unlink(missing_ok=True)
        for old in self.layout.failures_paths(table, shard_url)[1:]:  # its name in earlier versions
            old.unlink(missing_ok=True)
        part, conflicts = rows_to_table(rows, vectors, self.entry.dim)
        meta = {CONFLICTS_KEY: json.dumps(conflicts), **self._described}
        part_path = self.layout.part_path(table, shard_url)
        for old in self.layout.part_paths(table, shard_url):
            if old.exists() and not readable_part(old):
                self._quarantine(old)  # a damaged part of this shard: kept aside, never read again
        write_atomic(part, part_path, metadata=meta)
        self.layout.push(fail_path, part_path)  # failures first: the embedding part is the commit
        if self._keys is not None:
            self._key_parts.add(part_path.name)
            self._keys.update((row["key"], shard_url) for row in rows)
        return conflicts

    def _quarantine(self, path: Path) -> Path:
        """Move a file of the store to quarantine/<time>/<its path in the store> (never read, never deleted)."""
        rel = path.relative_to(self.layout.root)
        target = self.layout.quarantine_dir() / time.strftime("%Y%m%dT%H%M%S") / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
        if self.layout.remote is not None:
            self.layout.remote.delete(path)
        return target

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
        parts, self.entry.rows = self._count(self.layout.parts(name))
        self.entry.parts = len(parts)
        _, self.entry.failures = self._count(self.layout.failure_parts(name))
        self.entry.schema_conflicts = json.dumps(schema_conflicts(parts), sort_keys=True)
        self.catalog.put(self.entry)
        self.layout.push_catalog()
        return self.entry


    def _count(self, paths: list[Path]) -> tuple[list[Path], int]:
        """(the readable parts of `paths`, their rows); a damaged part (another run's, or one that was cut
        after its commit) is left out of the counts with one warning naming it and the repair."""
        readable, rows = [], 0
        for path in paths:
            try:
                rows += pq.ParquetFile(path).metadata.num_rows
            except (OSError, pa.ArrowException) as exc:
                warnings.warn(ArtlensWarning(
                    f"table {self.entry.name!r}: {path} cannot be read ({exc}); it is not counted: run `artlens "
                    f"repair --store {self.layout.root}` to move it into quarantine, then re-run the same "
                    "command to restore its rows"), stacklevel=3)
                continue
            readable.append(path)
        return readable, rows


def write_key_table(root: str | Path, entry: TableEntry, data: pa.Table) -> TableEntry:
    """Write (or replace) a key table: a table without embeddings (`entry.dim` 0) whose rows are about the
    keys of `entry.parent` (e.g. the near-duplicate groups of `artlens dedup`), as one part.

    A new table gets its catalog entry first (0 rows: its view is empty, its parent's view unchanged); the
    part is written to a temporary name and renamed over the previous one (the commit: a reader sees the old
    rows or the new, never a mix nor none), then the catalog entry is recounted. Refused when the name is
    held by a table of another kind or parent, or differs only in case from another table's."""
    if entry.has_embeddings or not entry.parent:
        raise ValueError("write_key_table writes tables of dim 0 linked to a parent")
    layout = StoreLayout.at(root)
    path = layout.key_part_path(entry.name)  # validates the name
    catalog = Catalog(layout.catalog_path)
    entries = catalog.entries()
    existing = next((e for e in entries if e.name == entry.name), None)
    twin = next((e.name for e in entries if e.name != entry.name and e.name.lower() == entry.name.lower()), None)
    if twin is not None:
        raise CatalogError(f"table {entry.name!r} differs from the store's table {twin!r} only in case, and SQL "
                           "names ignore case")
    if existing is not None and (existing.kind, existing.parent, existing.dim) != (entry.kind, entry.parent, 0):
        raise CatalogError(
            f"table {entry.name!r} exists and is a {existing.kind!r} table"
            f"{f' of {existing.parent!r}' if existing.parent else ''}, not a {entry.kind!r} table of "
            f"{entry.parent!r}: it is not replaced; rename or drop it first")
    if existing is None:
        if layout.parts(entry.name):
            raise CatalogError(f"table {entry.name!r} has parts but no catalog entry: run `artlens repair "
                               f"--store {layout.root}` first")
        catalog.put(TableEntry(**{**vars(entry), "rows": 0, "parts": 0}))
        layout.push_catalog()
    else:
        entry.created = existing.created
    for tmp in layout.stale_temporaries(entry.name):
        tmp.unlink(missing_ok=True)
    described = {DESCRIPTION_KEY: json.dumps(entry.description(), sort_keys=True)}
    write_atomic(data, path, metadata=described)
    layout.push(path)
    for other in layout.parts(entry.name):  # none but its own part (a key table has one)
        if other != path:
            other.unlink(missing_ok=True)
    entry.rows, entry.parts, entry.failures = data.num_rows, 1, 0
    entry.schema_conflicts = "{}"
    catalog.put(entry)
    layout.push_catalog()
    return entry


def readable_part(path: Path) -> bool:
    """Whether a part's Parquet footer reads: one small read, and a truncated file fails it."""
    try:
        pq.read_metadata(path)
    except (OSError, pa.ArrowException):
        return False
    return True


def committed_part(layout: StoreLayout, table: str, shard_url: str, verify: bool = True) -> Path | None:
    """The committed part of a shard: under its id, else under its id of earlier versions (the URL hash);
    with `verify`, only a readable one (`readable_part`). None when the shard is not committed."""
    for path in layout.part_paths(table, shard_url):
        if path.exists() and (not verify or readable_part(path)):
            return path
    return None


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
