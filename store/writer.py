"""The one way embeddings enter a store: per-shard parts committed atomically, then the catalog updated.

Protocol for each shard: write its failures part (if any), then its embedding part; the embedding part's
rename is the commit. A shard whose embedding part exists and is readable (its Parquet footer reads) is
complete and is skipped on resume; a shard killed before that rename, or whose part cannot be read (a
truncated file), is redone from scratch, overwriting any failures part it had left, its unreadable part moved
to quarantine/ first. A part is named by the shard's id (store/layout.py `shard_id`: the file's name, size and
ends, so a moved shard keeps it); a part named by the id of earlier versions (the URL hash) still counts.
"""
from __future__ import annotations

import fcntl
import json
import shutil
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from artlens.store.catalog import Catalog, CatalogError, TableEntry
from artlens.store.errors import ArtlensWarning
from artlens.store.layout import StoreLayout, exclusive_lock
from artlens.store.parts import failures_table, rows_to_table, write_atomic
from artlens.store.schema import CONFLICTS_KEY, conform, conform_parts, type_names, union

#: Every part (and failures part) carries its table's description (`TableEntry.description`, JSON) under this
#: key of its Parquet metadata: `artlens repair` rebuilds a lost catalog from the newest part.
DESCRIPTION_KEY = "artlens"
#: The provenance fields every part also carries as plain keys `artlens.<field>` of its Parquet metadata (so a
#: copied table folder says which model, weights and preprocessing made its embeddings without parsing JSON).
PROVENANCE_FIELDS = ("kind", "model", "model_ref", "pretrained", "checkpoint_sha256", "preprocess", "dim")
#: The table's schema lock (`tables/<table>/.lock`, flock): commits of one table, from any process, one at a time.
SCHEMA_LOCK = ".lock"


def described(entry: TableEntry) -> dict[str, str]:
    """The Parquet key-value metadata every part of `entry`'s table carries: the description (JSON) under
    DESCRIPTION_KEY and each of PROVENANCE_FIELDS as `artlens.<field>` (text; '' for none)."""
    meta = {DESCRIPTION_KEY: json.dumps(entry.description(), sort_keys=True)}
    for name in PROVENANCE_FIELDS:
        value = getattr(entry, name)
        meta[f"{DESCRIPTION_KEY}.{name}"] = "" if value is None else str(value)
    return meta


@contextmanager
def table_schema_lock(layout: StoreLayout, table: str) -> Iterator[None]:
    """Hold the table's schema lock: its parts' schemas are read, widened and written by one process at a time."""
    with exclusive_lock(layout.table_dir(table) / SCHEMA_LOCK):
        yield


class TableWriter:
    def __init__(self, root: str | Path, entry: TableEntry, overwrite: bool = False):
        self.layout = StoreLayout.at(root)
        self.layout.table_dir(entry.name)  # validates the name
        self.catalog = Catalog(self.layout.catalog_path)
        self.entry = self._open_entry(entry, overwrite)
        self._described = described(self.entry)
        self._keys: dict[str, str] | None = None     # committed_keys(), once asked for
        self._key_parts: set[str] = set()
        self._schemas: dict[str, pa.Schema] = {}     # part file name → its schema, each footer read once
        for tmp in self.layout.stale_temporaries(entry.name):
            tmp.unlink(missing_ok=True)

    def _open_entry(self, entry: TableEntry, overwrite: bool) -> TableEntry:
        # Parts are looked for before the catalog is read: a part is written only after its table's entry,
        # so parts seen first and no entry after means a lost entry; in the other order, another process
        # (`--devices`) could put the entry and commit a part between the two looks, and that is no loss.
        has_parts = bool(self.layout.parts(entry.name))
        existing = self.catalog.get(entry.name)
        if existing is None:  # DuckDB (and some file systems) match names ignoring case: `Art` would be `art`
            twin = next((e.name for e in self.catalog.entries()  # (the same name: another process made it meanwhile)
                         if e.name != entry.name and e.name.lower() == entry.name.lower()), None)
            if twin is not None:
                raise CatalogError(f"table {entry.name!r} differs from the store's table {twin!r} only in case, "
                                   "and SQL names ignore case: use another `table` name", argument="table")
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
        part_path = self.layout.part_path(table, shard_url)
        for old in self.layout.part_paths(table, shard_url):
            if old.exists() and not readable_part(old):
                self._quarantine(old)  # a damaged part of this shard: kept aside, never read again
        with table_schema_lock(self.layout, table):
            known = self.part_schemas()
            across: dict[str, str] = {}
            target = union([*widest_first(known.values()), part.schema], across)
            conflicts.update(across)
            self._conform(target, across)  # earlier parts, when this one widens the table's schema
            meta = {CONFLICTS_KEY: json.dumps(conflicts, sort_keys=True), **self._described}
            write_atomic(conform(part, target), part_path, metadata=meta)
            self._schemas[part_path.name] = target
        self.layout.push(fail_path, part_path)  # failures first: the embedding part is the commit
        if self._keys is not None:
            self._key_parts.add(part_path.name)
            self._keys.update((row["key"], shard_url) for row in rows)
        return conflicts

    def remove_shard(self, shard_url: str) -> list[Path]:
        """Remove a shard's committed part and failures part (an earlier version of a folder's virtual shard,
        redone under its new id: pipeline/extract/run.py `retire_superseded`). Returns the files removed."""
        table = self.entry.name
        gone = [p for p in (*self.layout.part_paths(table, shard_url), *self.layout.failures_paths(table, shard_url))
                if p.exists()]
        for path in gone:
            path.unlink(missing_ok=True)
        if gone and self.layout.remote is not None:
            self.layout.remote.delete(*gone)
        if self._keys is not None:
            self._keys = {k: s for k, s in self._keys.items() if s != shard_url}
            self._key_parts -= {p.name for p in gone}
        return gone

    def part_schemas(self) -> dict[str, pa.Schema]:
        """Part file name → schema of every readable committed part (each footer read once per writer: a part
        another process rewrote since has a schema no wider than the newest part, which is read)."""
        paths = self.layout.parts(self.entry.name)
        names = {p.name for p in paths}
        for gone in [n for n in self._schemas if n not in names]:
            del self._schemas[gone]
        for path in paths:
            if path.name not in self._schemas:
                try:
                    self._schemas[path.name] = pq.read_schema(path)
                except (OSError, pa.ArrowException):
                    continue  # unreadable: its shard is redone; not part of the table
        return self._schemas

    def _conform(self, target: pa.Schema, conflicts: dict[str, str]) -> list[Path]:
        """Rewrite the parts whose columns differ from `target` (under the schema lock); keep an index that
        covers them current (only metadata columns change: its vectors and ids stay right)."""
        parts = [self.layout.table_dir(self.entry.name) / n for n in sorted(self._schemas)]
        rewritten = conform_parts(parts, target, conflicts, self._schemas)
        if rewritten:
            self.layout.push(*(p for p, _, _ in rewritten))
            index_follows(self.layout, self.catalog, self.entry.name, rewritten)
        return [p for p, _, _ in rewritten]

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
        with table_schema_lock(self.layout, name):  # finish a widening a killed commit left half done
            known = self.part_schemas()
            across: dict[str, str] = {}
            target = union(widest_first(known.values()), across)
            self._conform(target, across)
        self.entry.column_types = json.dumps(type_names(target) if known else {})
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
    write_atomic(data, path, metadata=described(entry))
    layout.push(path)
    for other in layout.parts(entry.name):  # none but its own part (a key table has one)
        if other != path:
            other.unlink(missing_ok=True)
    entry.rows, entry.parts, entry.failures = data.num_rows, 1, 0
    entry.schema_conflicts = "{}"
    entry.column_types = json.dumps(type_names(data.schema))
    catalog.put(entry)
    layout.push_catalog()
    return entry


def widest_first(schemas) -> list[pa.Schema]:
    """Schemas with the most columns first: a part already conformed then sets the union's column order."""
    return sorted(schemas, key=len, reverse=True)


def index_follows(layout: StoreLayout, catalog: Catalog, table: str, rewritten: list[tuple[Path, int, int]]
                   ) -> None:
    """Record the new sizes of rewritten parts in the table's index entry where it covered them as they were,
    under the index lock (`indexes/<table>/.lock`, store/index.py), so the index does not turn stale."""
    if not layout.index_dir(table).is_dir():
        return
    with open(layout.index_dir(table) / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            entry = catalog.get_index(table)
            if entry is None:
                return
            covered = entry.covered()
            changed = False
            for path, before, after in rewritten:
                if covered.get(path.name) == before:
                    covered[path.name] = after
                    changed = True
            if changed:
                entry.parts = json.dumps(covered)
                catalog.put_index(entry)
                layout.push_catalog()
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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
