"""The store's catalog (`catalog.duckdb`): how each table's embeddings were made, and its indexes.

Two DuckDB tables: `tables` (one row per embedding table) and `indexes` (one row per table's FAISS index).
The file is opened only for the moment of a read or write, so readers and a running extraction can share
it; a lock held by another process is waited for briefly. Columns come from the dataclasses below, so a
catalog written by an older artlens gains new columns when it is next written.

A new catalog file is written in DuckDB's storage format STORAGE_VERSION, the one the oldest DuckDB the
package declares (`duckdb>=1.4`) reads (DuckDB 2 writes a newer format by default, which 1.x cannot open);
`artlens repair` rewrites a catalog found in another format (`rewrite`). Every write also replaces
`catalog.json` beside it (atomically, same content: `export`), which any tool reads with no DuckDB at all
(format: docs/store-format.md).
"""
from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, TypeVar

import duckdb
import pyarrow as pa

from artlens.store.errors import UserError, disk_full
from artlens.store.layout import temporary_path

#: The DuckDB storage format of a catalog artlens creates: what DuckDB 1.4 (pyproject's floor) reads.
STORAGE_VERSION = "v1.4.0"
_CONFIG = {"storage_compatibility_version": STORAGE_VERSION}
#: The DuckDB-free copy of the catalog, beside it: `{"format": JSON_FORMAT, "format_version": 1, ...}`.
JSON_NAME = "catalog.json"
JSON_FORMAT = "artlens-catalog"
JSON_FORMAT_VERSION = 1
#: Fields holding JSON text in DuckDB, written as JSON values (objects) in catalog.json.
_JSON_FIELDS = {"tables": ("schema_conflicts", "column_types"), "indexes": ("params", "parts")}

#: The fields that define what an embedding means; a table may only grow with the same values.
IDENTITY_FIELDS = ("model", "pretrained", "checkpoint_sha256", "preprocess", "dim", "parent")


def _now() -> datetime:
    return datetime.now(timezone.utc)


class CatalogError(UserError, RuntimeError):
    """A catalog that refuses the operation: settings that differ from a table's, a linked table, a lock held."""


class CatalogDamaged(CatalogError):
    """A catalog file DuckDB cannot read (empty, not a DuckDB file, corrupt): `artlens repair` rebuilds it
    from the parts. Raised at once, never waited for as a lock is. `reason`: what is wrong with the file."""

    def __init__(self, message: str, reason: str = ""):
        super().__init__(message)
        self.reason = reason


#: What DuckDB says when another process holds the file (DuckDB 2.0: 'Could not set lock on file ...:
#: Conflicting lock is held in ...'); any other error opening the catalog is not worth waiting for.
_LOCK_TEXTS = ("Could not set lock", "Conflicting lock")
#: What DuckDB says of a file that is not a (whole) DuckDB database: empty or random bytes ('... exists, but
#: it is not a valid DuckDB database file!'), a truncated one, a block whose checksum fails.
_DAMAGE_TEXTS = ("not a valid DuckDB database file", "Could not read enough bytes", "Corrupt database file",
                 "checksum", "database file is corrupt", "block at location")


#: What DuckDB 1.x says of a catalog file in a newer storage format ('Trying to read a database file with
#: version number 999, but we can only read versions between 64 and 67. The database file was created with
#: an newer version of DuckDB.').
_NEWER_TEXTS = ("created with an newer version", "created with a newer version", "can only read version")


class CatalogNewer(CatalogError):
    """A catalog file in a storage format newer than this DuckDB reads: reads fall back to catalog.json."""


def _is_damage(exc: Exception) -> bool:
    return isinstance(exc, duckdb.SerializationException) or any(t in str(exc) for t in _DAMAGE_TEXTS)


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
    #: How many embedding parts `rows` was counted from (0: not recorded, a catalog of an older artlens):
    #: a reader that finds fewer knows a part went missing without reading a footer.
    parts: int = 0
    schema_conflicts: str = "{}"
    #: JSON {column: Arrow type}: the one schema every part of the table has (store/schema.py); "{}" until
    #: the table is first finished (or a catalog of an older artlens).
    column_types: str = "{}"
    source: str = ""
    created: datetime = field(default_factory=_now)
    updated: datetime = field(default_factory=_now)
    artlens_version: str = ""
    #: A linked table: its `key` column holds keys of this table, several rows per key (e.g. a deformation
    #: table: one row per deformation and severity of each painting of the parent), or one row per key of
    #: it without embeddings (a key table, dim 0: the near-duplicate groups of `artlens dedup`). Empty: keys
    #: are unique.
    parent: str = ""
    #: A table without images (imported embeddings) may name its column of image URLs (`artlens import
    #: --image-url-column`): what `Store.image_url` and the explorer show. Empty: none.
    image_url_column: str = ""

    @property
    def has_embeddings(self) -> bool:
        """Whether the table holds vectors (an `embedding` column); a key table (dim 0, e.g. the near-duplicate
        groups `artlens dedup` writes) holds columns about the keys of its parent only."""
        return self.dim > 0

    def identity(self) -> dict:
        return {k: getattr(self, k) for k in IDENTITY_FIELDS}

    def description(self) -> dict:
        """What every part of the table carries (JSON under the `artlens` key of its Parquet metadata), from
        which `artlens repair` rebuilds a lost catalog entry: every field but the counts and `updated`."""
        values = {k: getattr(self, k) for k in DESCRIPTION_FIELDS}
        values["created"] = self.created.isoformat()
        return values

    @classmethod
    def from_description(cls, values: dict) -> "TableEntry":
        known = {k: v for k, v in values.items() if k in DESCRIPTION_FIELDS}
        if isinstance(known.get("created"), str):
            known["created"] = datetime.fromisoformat(known["created"])
        return cls(**known)

    def mismatches(self, other: "TableEntry") -> dict:
        mine, theirs = self.identity(), other.identity()
        return {k: (mine[k], theirs[k]) for k in IDENTITY_FIELDS if mine[k] != theirs[k]}

    def conflicts(self) -> dict:
        return json.loads(self.schema_conflicts or "{}")

    def unique_keys_needed(self, what: str) -> None:
        """Refuse `what` (e.g. an index) for a linked table, whose keys name several rows each, and for a key
        table, which holds no embeddings."""
        if not self.has_embeddings:
            raise CatalogError(
                f"table {self.name!r} is a {self.kind!r} table{f' of {self.parent!r}' if self.parent else ''} "
                f"without embeddings, so {what} do not apply to it; query it with SQL")
        if self.parent:
            raise CatalogError(
                f"table {self.name!r} is a {self.kind!r} table of {self.parent!r}: its `key` column holds "
                f"{self.parent!r}'s keys, several rows each, so {what} (which map one key to one row) do not "
                f"apply to it; query it with SQL, joined to {self.parent!r} on key")


@dataclass
class IndexEntry:
    name: str                         # the table this index serves
    kind: str = ""                    # flat | hnsw | ivfpq | ivfsq | factory
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


#: The kind of a key table of near-duplicate groups (`artlens dedup`): `parent` is the table whose rows it
#: groups, one row per row of it (`key`, `dup_group`, `score`), and the parent's view gains `dup_group`.
DUPLICATES_KIND = "duplicates"
#: The column of a duplicates table (and of its parent's view) naming each row's group: its smallest key.
DUP_GROUP_COLUMN = "dup_group"

#: The TableEntry fields a part records (see `TableEntry.description`).
DESCRIPTION_FIELDS = ("name", "kind", "model", "model_ref", "pretrained", "checkpoint_sha256", "preprocess", "dim",
                      "dtype", "source", "artlens_version", "parent", "created", "image_url_column")


class Catalog:
    def __init__(self, path: Path, timeout_s: float = 30.0):
        self.path = Path(path)
        self.timeout_s = timeout_s

    @contextmanager
    def _connect(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection (`_connected`). A catalog this call created, on a disk too full to finish it, is
        removed again: DuckDB leaves a file it cannot read, and the same command must work once space is freed."""
        fresh = not read_only and not self.path.exists()
        try:
            with self._connected(read_only) as con:
                yield con
        except Exception as exc:
            if fresh and disk_full(exc) is not None:
                for leftover in (self.path, self.path.with_name(self.path.name + ".wal")):
                    leftover.unlink(missing_ok=True)
            raise

    @contextmanager
    def _connected(self, read_only: bool) -> Iterator[duckdb.DuckDBPyConnection]:
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
        except duckdb.Error as exc:  # a file that opened but whose blocks cannot be read
            if _is_damage(exc):
                raise self._damaged(exc) from exc
            raise
        finally:
            con.close()

    def _connect_with_retry(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only, config=dict(_CONFIG))
            except duckdb.Error as exc:
                if _is_damage(exc):
                    raise self._damaged(exc) from exc
                if any(t in str(exc) for t in _NEWER_TEXTS):
                    raise CatalogNewer(
                        f"catalog {self.path} was written by a newer DuckDB than this one ({duckdb.__version__}) "
                        f"in a format it cannot read: run `artlens repair --store {self.path.parent}` with that "
                        f"DuckDB to rewrite it in {STORAGE_VERSION}, or upgrade duckdb") from exc
                locked = any(t in str(exc) for t in _LOCK_TEXTS)
                if not locked and isinstance(exc, duckdb.IOException):  # e.g. permission denied: no wait
                    raise CatalogError(f"cannot open catalog {self.path}: {_one_line(exc)}") from exc
                if not locked:
                    raise
                if time.monotonic() > deadline:  # another process holds the write lock
                    raise CatalogError(f"catalog {self.path} stayed locked for {self.timeout_s:.0f}s: "
                                       f"{_one_line(exc)}") from exc
                time.sleep(0.05)

    def _damaged(self, exc: Exception) -> CatalogDamaged:
        """The one-line message for a catalog file DuckDB cannot read: what is wrong and what to run."""
        try:
            head = self.path.open("rb").read(12)
        except OSError:
            head = b""
        if not head:
            what = "it is empty (0 bytes), not a DuckDB database file"
        elif head[8:12] != b"DUCK":
            what = "it is not a DuckDB database file (no DuckDB header)"
        else:
            what = f"DuckDB cannot read it ({_one_line(exc)})"
        store = self.path.parent
        return CatalogDamaged(
            f"catalog {self.path} is damaged: {what}; run `artlens repair --store {store}` to move it into "
            f"{store / 'quarantine'} and rebuild the catalog from the table parts", reason=what)

    def exists(self) -> bool:
        return self.path.exists()

    @property
    def json_path(self) -> Path:
        return self.path.with_name(JSON_NAME)

    def _read(self, table: str) -> list:
        try:
            with self._connect(read_only=True) as con:
                return _rows(con, table)
        except CatalogNewer:
            if not self.json_path.is_file():
                raise
            return read_json(self.json_path)[table]  # the same rows, written by the same catalog write

    def _write(self, table: str, entry) -> None:
        entry.updated = _now()
        with self._connect(read_only=False) as con:
            _insert(con, table, entry)
            self._export(con)

    def _delete(self, table: str, name: str) -> None:
        with self._connect(read_only=False) as con:
            con.execute(f"DELETE FROM {table} WHERE name = ?", [name])
            self._export(con)

    def _export(self, con: duckdb.DuckDBPyConnection) -> None:
        """Replace catalog.json with what `con` (holding the catalog's write lock) now holds."""
        write_json(self.json_path, {t: _rows(con, t) for t in _TABLES})

    def export(self) -> Path:
        """Write catalog.json from the catalog as it is (e.g. for a catalog of an older artlens)."""
        with self._connect(read_only=False) as con:
            self._export(con)
        return self.json_path

    def storage_version(self) -> str:
        """The DuckDB storage format of the catalog file (e.g. 'v1.4.0'), '' when DuckDB does not say."""
        with self._connect(read_only=True) as con:
            rows = con.execute("SELECT tags FROM duckdb_databases() WHERE NOT internal").fetchall()
        tags = rows[0][0] if rows and rows[0][0] else {}
        return str(tags.get("storage_version", "")).rstrip("+")

    def rewrite(self) -> None:
        """Rewrite the catalog file in STORAGE_VERSION (same rows), atomically: a new file then a rename, so a
        crash leaves the old catalog or the new. For a catalog an artlens on a newer DuckDB wrote in its
        default format. No other process may write the store meanwhile (`artlens repair`)."""
        rows = {t: self._read(t) for t in _TABLES}
        tmp = temporary_path(self.path)
        try:
            con = duckdb.connect(str(tmp), config=dict(_CONFIG))
            try:
                for table, entries in rows.items():
                    for statement in _ddl(table):
                        con.execute(statement)
                    for entry in entries:
                        _insert(con, table, entry)
                con.execute("CHECKPOINT")
            finally:
                con.close()
            os.replace(tmp, self.path)
        finally:
            for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
                leftover.unlink(missing_ok=True)
        self.export()

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


def _rows(con: duckdb.DuckDBPyConnection, table: str) -> list:
    cls = _TABLES[table]
    known = {f.name for f in fields(cls)}
    try:  # through Arrow: DuckDB 1.x needs pytz to hand TIMESTAMPTZ values to Python itself, Arrow does not
        rows = _pylist(con.sql(f"SELECT * FROM {table} ORDER BY name").to_arrow_table())
    except duckdb.CatalogException:  # no such table yet (new or older catalog)
        return []
    return [cls(**{k: v for k, v in row.items() if k in known and v is not None}) for row in rows]


def _pylist(arrow: pa.Table) -> list[dict]:
    """The rows of a catalog table as dicts, its TIMESTAMPTZ columns (UTC, `_CONFIG`) as aware UTC datetimes.
    Arrow converts a time-zoned timestamp to Python through pandas, whose import alone took 0.3-0.4 s of
    `artlens extract`'s start-up on the H200 machine; the naive UTC values are converted without it."""
    zoned = [i for i, f in enumerate(arrow.schema) if pa.types.is_timestamp(f.type) and f.type.tz]
    for i in zoned:
        arrow = arrow.set_column(i, arrow.field(i).name, arrow.column(i).cast(pa.timestamp(arrow.field(i).type.unit)))
    rows = arrow.to_pylist()
    names = [arrow.field(i).name for i in zoned]
    for row in rows:
        for name in names:
            if row[name] is not None:
                row[name] = row[name].replace(tzinfo=timezone.utc)
    return rows


def _insert(con: duckdb.DuckDBPyConnection, table: str, entry) -> None:
    values = asdict(entry)
    cols = list(values)
    con.execute(f"DELETE FROM {table} WHERE name = ?", [entry.name])
    con.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [values[c] for c in cols])


def _jsonable(table: str, entry) -> dict:
    out = {}
    for key, value in asdict(entry).items():
        if isinstance(value, datetime):
            value = value.isoformat()
        elif key in _JSON_FIELDS[table] and isinstance(value, str):
            try:
                value = json.loads(value or "{}")
            except ValueError:
                pass  # not JSON (hand-edited): kept as the text it is
        out[key] = value
    return out


def write_json(path: Path, rows: dict[str, list]) -> None:
    """catalog.json: {"format", "format_version", "storage_version", "tables": [...], "indexes": [...]},
    one object per catalog row with every field of TableEntry / IndexEntry (timestamps ISO 8601, the
    JSON-text fields as JSON values), written to a temporary name, fsynced and renamed into place."""
    doc = {"format": JSON_FORMAT, "format_version": JSON_FORMAT_VERSION, "storage_version": STORAGE_VERSION,
           **{t: [_jsonable(t, e) for e in rows.get(t, [])] for t in _TABLES}}
    tmp = temporary_path(path)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=1, ensure_ascii=False, default=str)  # (field and column order kept)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path) -> dict[str, list]:
    """The rows of a catalog.json as {"tables": [TableEntry], "indexes": [IndexEntry]} (unknown fields are
    ignored). Raises ValueError for a file that is not an artlens catalog.json."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
        raise ValueError(f"{path} is not an artlens catalog.json")
    out: dict[str, list] = {}
    for table, cls in _TABLES.items():
        known = {f.name: f for f in fields(cls)}
        rows = doc.get(table) or []
        if not isinstance(rows, list):
            raise ValueError(f"{path}: {table!r} is not a list")
        entries = []
        for row in rows:
            if not isinstance(row, dict):
                raise ValueError(f"{path}: a row of {table!r} is not an object")
            values = {k: v for k, v in row.items() if k in known and v is not None}
            for key in _JSON_FIELDS[table]:
                if key in values and not isinstance(values[key], str):
                    values[key] = json.dumps(values[key])
            for key, value in values.items():
                values[key] = _typed(path, table, key, known[key].type, value)
            entries.append(cls(**values))
        out[table] = entries
    return out


_PY_TYPES = {"str": (str,), "str | None": (str,), "int": (int,), "float": (int, float), "float | None": (int, float)}


def _typed(path: Path, table: str, key: str, kind: str, value):
    """A catalog.json value checked against its field's type (timestamps parsed); ValueError if it is not one."""
    if kind == "datetime":
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value)
            except ValueError:
                pass
        raise ValueError(f"{path}: {table}.{key} is not an ISO 8601 timestamp: {value!r}")
    if isinstance(value, bool) or not isinstance(value, _PY_TYPES.get(kind, (str,))):
        raise ValueError(f"{path}: {table}.{key} should be {kind}, got {value!r}")
    return value


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
