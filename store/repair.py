"""`artlens repair`: bring a store's catalog back in line with its parts, never deleting data.

    repair(RepairConfig(store="artstore")).lines()

What it does, in this order:
- a catalog DuckDB cannot read (empty, not a DuckDB file, corrupt) is moved into `quarantine/` and rebuilt,
  from `catalog.json` where that reads (index entries included), else from the parts;
- a catalog in a DuckDB storage format newer than the one artlens writes (`catalog.STORAGE_VERSION`, which
  DuckDB 1.4 reads: a store an older artlens wrote with DuckDB 2's default format) is rewritten in it;
- every part and failures part whose Parquet footer cannot be read (a truncated file) is moved into
  `quarantine/` under its path in the store, so the next extract or import of its shard writes it again;
- every table with parts gets a catalog entry: the one the catalog has, else the description the newest part
  carries (`TableWriter` writes it under the `artlens` key of each part's metadata), else what the parts
  show (the dim of the embedding column), with a warning naming the fields it could not recover;
- every part of a table is brought to the table's one schema (store/schema.py: a copied-in or older part
  with other columns or types is rewritten, atomically, never losing a column);
- rows, parts, failures and schema conflicts are recounted from the footers; `catalog.json` is written.
A catalog that is rebuilt loses its index entries (the index files stay): the report says which to rebuild.
"""
from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from artlens.store.catalog import (
    DESCRIPTION_FIELDS, STORAGE_VERSION, Catalog, CatalogDamaged, IndexEntry, TableEntry, read_json)
from artlens.store.layout import LayoutError, StoreLayout, check_table_name
from artlens.store.parts import EMBEDDING
from artlens.store.query import StoreError, StoreWarning
from artlens.store.schema import conform_parts, type_names, union
from artlens.store.writer import (
    DESCRIPTION_KEY, index_follows, schema_conflicts, table_schema_lock, widest_first)

#: Description fields that cannot be derived from parts without the `artlens` metadata (dim can, from the
#: embedding column; name from the folder).
_UNDERIVABLE = tuple(f for f in DESCRIPTION_FIELDS if f not in ("name", "dim", "dtype", "created"))


@dataclass(frozen=True)
class RepairConfig:
    """The one config of `artlens repair`, shared by the CLI and the Python API."""
    store: str | Path


@dataclass
class RepairReport:
    store: str
    catalog: str = "read"             # read | missing | damaged | ...: what the catalog was before the repair
    quarantined: list[tuple[Path, Path, str]] = field(default_factory=list)   # (from, to, why)
    tables: list[str] = field(default_factory=list)                            # one line per table
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"repair of {self.store}:"]
        if self.catalog != "read":
            out.append(f"  catalog: {self.catalog}")
        out += [f"  moved {src} to {dst}: {why}" for src, dst, why in self.quarantined]
        out += [f"  {line}" for line in self.tables]
        out += [f"  {note}" for note in self.notes]
        if len(out) == 1:
            out.append("  no tables")
        return out


def repair(config: RepairConfig | str | Path) -> RepairReport:
    cfg = config if isinstance(config, RepairConfig) else RepairConfig(store=config)
    layout = StoreLayout.at(cfg.store)
    if layout.remote is not None:
        raise StoreError(f"repair works on a local store, and `store` {str(cfg.store)!r} is remote: repair a "
                         "local copy of it and upload that", argument="store")
    if not layout.root.is_dir():
        raise StoreError(f"no store at {layout.root}: check `store`", argument="store")
    report = RepairReport(store=str(layout.root))
    quarantine = _Quarantine(layout, report)
    catalog = Catalog(layout.catalog_path)
    entries, indexes = _read_catalog(catalog, quarantine, report)
    _storage_format(catalog, report)

    names = set(entries)
    for name in layout.tables_on_disk():
        try:
            names.add(check_table_name(name))
        except LayoutError:
            report.notes.append(f"skipped {layout.root / 'tables' / name}: not a table name")
    for name in sorted(names):
        parts = [p for p in layout.parts(name) if quarantine.readable(p, "part")]
        failure_parts = [p for p in layout.failure_parts(name) if quarantine.readable(p, "failures part")]
        old = entries.get(name)
        entry = old or _rebuilt_entry(name, parts + failure_parts, report)
        before = (entry.rows, entry.parts, entry.failures, entry.schema_conflicts,
                  entry.column_types) if old else None
        column_types = _one_schema(layout, catalog, name, parts, report)
        entry.rows = sum(pq.read_metadata(p).num_rows for p in parts)
        entry.parts = len(parts)
        entry.failures = sum(pq.read_metadata(p).num_rows for p in failure_parts)
        entry.schema_conflicts = json.dumps(schema_conflicts(parts), sort_keys=True)
        entry.column_types = column_types if parts else entry.column_types
        now = (entry.rows, entry.parts, entry.failures, entry.schema_conflicts, entry.column_types)
        if before != now or report.catalog != "read":
            catalog.put(entry)  # a store with nothing wrong is left as it was
        report.tables.append(_table_line(entry, before and before[:3]))
        moved = any(src.parent == layout.table_dir(name) for src, _, _ in quarantine.moved)
        index = indexes.get(name)
        if index is None and layout.index_dir(name).is_dir() and any(layout.index_dir(name).glob("*.faiss")):
            report.notes.append(f"the index of {name!r} is not in the catalog (its files stay in "
                                f"{layout.index_dir(name)}): rebuild it with `artlens index --store "
                                f"{cfg.store} --table {name}`")
        elif index is not None and moved:
            report.notes.append(f"the index of {name!r} covers a part moved aside: rebuild it with "
                                f"`artlens index --store {cfg.store} --table {name}`")
    if catalog.exists() and not catalog.json_path.is_file():  # a store of an older artlens
        catalog.export()
        report.notes.append(f"wrote {catalog.json_path} (the catalog, readable without DuckDB)")
    if any(src != catalog.path and src.suffix == ".parquet" for src, _, _ in report.quarantined):
        report.notes.append("re-run the extract or import that wrote each moved part to restore its rows "
                            "(its shard is no longer done)")
    return report


def _read_catalog(catalog: Catalog, quarantine: "_Quarantine", report: RepairReport
                  ) -> tuple[dict[str, TableEntry], dict[str, IndexEntry]]:
    if not catalog.exists():
        entries, indexes, whence = _from_json(catalog)
        report.catalog = f"{catalog.path} was missing: rebuilt from {whence}"
        return entries, indexes
    try:
        return {e.name: e for e in catalog.entries()}, {i.name: i for i in catalog.indexes()}
    except CatalogDamaged as exc:
        why = exc.reason
        for path in (catalog.path, catalog.path.with_name(catalog.path.name + ".wal")):
            if path.exists():
                quarantine.move(path, why)
        entries, indexes, whence = _from_json(catalog)
        report.catalog = f"{catalog.path} was damaged ({why}): rebuilt from {whence}"
        return entries, indexes


def _from_json(catalog: Catalog) -> tuple[dict[str, TableEntry], dict[str, IndexEntry], str]:
    """The entries of catalog.json, when it reads (counts are recounted from the parts anyway); else none."""
    try:
        rows = read_json(catalog.json_path)
    except (OSError, ValueError, TypeError):
        return {}, {}, "the parts"
    indexes = {i.name: i for i in rows["indexes"]}
    for entry in indexes.values():
        catalog.put_index(entry)
    return {e.name: e for e in rows["tables"]}, indexes, f"the parts and {catalog.json_path}"


def _version(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.lstrip("v").rstrip("+").split("."))
    except ValueError:
        return ()


def _storage_format(catalog: Catalog, report: RepairReport) -> None:
    """Rewrite a catalog in a storage format newer than STORAGE_VERSION (which older DuckDBs cannot open)."""
    if not catalog.exists():
        return
    found = catalog.storage_version()
    if _version(found) > _version(STORAGE_VERSION):
        catalog.rewrite()
        report.notes.append(f"rewrote {catalog.path} from DuckDB storage format {found} to {STORAGE_VERSION}, "
                            "which DuckDB 1.4 and later open")


def _one_schema(layout: StoreLayout, catalog: Catalog, name: str, parts: list[Path], report: RepairReport) -> str:
    """Bring every part of the table to its one schema (store/schema.py); the schema as `column_types` JSON."""
    if not parts:
        return "{}"
    with table_schema_lock(layout, name):
        schemas = {p.name: pq.read_schema(p) for p in parts}
        across: dict[str, str] = {}
        target = union(widest_first(schemas.values()), across)
        rewritten = conform_parts(parts, target, across, schemas)
        if rewritten:
            index_follows(layout, catalog, name, rewritten)
            report.notes.append(f"table {name!r}: rewrote {len(rewritten)} part(s) to the table's one schema "
                                f"(columns {', '.join(target.names)})")
    return json.dumps(type_names(target))


class _Quarantine:
    """Moves files into quarantine/<time>/<their path in the store>; made on the first move only."""

    def __init__(self, layout: StoreLayout, report: RepairReport):
        self.layout, self.report = layout, report
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        self.dir = layout.quarantine_dir() / stamp
        n = 1
        while self.dir.exists():
            n += 1
            self.dir = layout.quarantine_dir() / f"{stamp}-{n}"

    @property
    def moved(self) -> list[tuple[Path, Path, str]]:
        return self.report.quarantined

    def readable(self, path: Path, what: str) -> bool:
        """Whether the footer of this part reads; if not, it is moved aside."""
        try:
            pq.read_metadata(path)
            return True
        except FileNotFoundError:
            return False
        except Exception as exc:  # noqa: BLE001 - truncated, empty, not Parquet: any reason is damage
            self.move(path, f"unreadable {what} ({' '.join(str(exc).split()).split('. ')[0]})")
            return False

    def move(self, path: Path, why: str) -> None:
        target = self.dir / path.relative_to(self.layout.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(target))
        self.report.quarantined.append((path, target, why))


def _rebuilt_entry(name: str, parts: list[Path], report: RepairReport) -> TableEntry:
    """The table's entry from the newest part that describes it; else from what the parts show."""
    for path in sorted(parts, key=lambda p: p.stat().st_mtime, reverse=True):
        raw = (pq.read_schema(path).metadata or {}).get(DESCRIPTION_KEY.encode())
        if raw:
            values = json.loads(raw)
            entry = TableEntry.from_description({**values, "name": name})
            if values.get("name") != name:
                report.notes.append(f"table {name!r}: its parts describe a table named {values.get('name')!r} "
                                    "(a folder renamed?); kept the folder's name")
            return entry
    entry = TableEntry(name=name, dim=_dim(parts))
    missing = [f for f in _UNDERIVABLE] + ([] if entry.dim else ["dim"])
    warnings.warn(StoreWarning(
        f"table {name!r}: its parts were written by an older artlens and do not describe the table, so the "
        f"rebuilt catalog entry lacks {', '.join(missing)} (rows, dim and failures were recounted from the "
        "parts)"), stacklevel=3)
    return entry


def _dim(parts: list[Path]) -> int:
    for path in parts:
        schema = pq.read_schema(path)
        if EMBEDDING in schema.names:
            kind = schema.field(EMBEDDING).type
            if isinstance(kind, pa.FixedSizeListType):
                return kind.list_size
            first = pq.ParquetFile(path).read(columns=[EMBEDDING]).column(0)
            for value in first.to_pylist():
                if value is not None:
                    return len(value)
    return 0


def _table_line(entry: TableEntry, before: tuple[int, int, int] | None) -> str:
    now = f"{_n(entry.rows, 'row')} in {_n(entry.parts, 'part')}, {_n(entry.failures, 'failure')}"
    if before is None:
        return f"table {entry.name}: {now} (entry rebuilt: model {entry.model!r}, dim {entry.dim})"
    rows, parts, failures = before
    if (rows, failures) == (entry.rows, entry.failures) and parts in (0, entry.parts):  # 0: not recorded
        return f"table {entry.name}: {now} (as the catalog had)"
    return (f"table {entry.name}: {now} (recounted; the catalog had {_n(rows, 'row')} in {_n(parts, 'part')}, "
            f"{_n(failures, 'failure')})")


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"
