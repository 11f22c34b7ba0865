"""`artlens import`: precomputed embeddings → a store table, one committed part per source file.

SOURCE: a Parquet file or folder, or clip-retrieval output (`COL/COL_N.npy` + `metadata/metadata_N.parquet`).
Each file (or N) is one shard whose id is its path, so a re-run skips what is already imported. Other
columns become metadata, named by the rule of every metadata field (store/parts.py `metadata_columns`): the
store's own names compared without case (`key`, `Embedding`, `WIDTH` of another type…) become `meta_<name>`.
Every refused row is a failure (stage `import`): null key, null vector, wrong length, NaN/inf, all zeros,
a key already imported (the first is kept). Vectors off unit norm by > 1e-3 are renormalised and counted.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from artlens import store
from artlens.store.catalog import TableEntry
from artlens.store.parts import CORE_COLUMNS, TYPED_COLUMNS, fold, metadata_columns
from artlens.store.writer import TableWriter

from artlens import __version__
from artlens.errors import MissingInput, UserError
from artlens.pipeline.failures import Failure

EXIT_OK, EXIT_SOME_FAILED = 0, 3
NORM_TOLERANCE = 1e-3
_PANDAS_INDEX = re.compile(r"^__index_level_\d+__$")
_DEFAULT_KEYS = {"parquet": ("key",), "clip-retrieval": ("key", "image_path")}


class ImportSourceError(UserError):
    """The source cannot be imported as asked (missing column, no key, inconsistent files)."""


@dataclass(frozen=True)
class ImportConfig:
    source: str
    store: str
    table: str
    embedding_column: str
    key_column: str | None = None
    model_name: str | None = None
    overwrite: bool = False
    #: A column of image URLs (e.g. NGA's `link`), recorded in the catalog for `Store.image_url` and the explorer.
    image_url_column: str | None = None


@dataclass
class ImportSummary:
    table: str
    files: int = 0
    files_skipped: int = 0
    files_committed: int = 0
    rows: int = 0
    renormalised: int = 0
    failures: int = 0
    dim: int = 0
    table_rows: int = 0
    schema_conflicts: dict = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if self.failures else EXIT_OK

    def lines(self) -> list[str]:
        out = [
            f"table {self.table}: {self.rows} rows imported, {self.failures} failed",
            f"renormalised: {self.renormalised} vectors had |norm - 1| > {NORM_TOLERANCE:g}, scaled to unit norm",
            f"files: {self.files} total, {self.files_committed} imported now, {self.files_skipped} already done",
            f"table now holds {self.table_rows} rows of dim {self.dim}",
        ]
        out += [f"column {c!r}: {why}" for c, why in sorted(self.schema_conflicts.items())]
        if self.failures:
            out.append("failed rows: artlens sql --store STORE \"SELECT * FROM failures\"")
        return out


@dataclass(frozen=True)
class _Unit:
    """One source file (or one N of clip-retrieval) = one shard of the table."""
    shard: str
    path: Path
    npy: Path | None = None

    def metadata(self, column: str) -> pa.Table:
        names = [n for n in pq.read_schema(self.path).names if self.npy is not None or n != column]
        return pq.read_table(self.path, columns=names)

    def vectors(self, column: str) -> pa.Array:
        if self.npy is None:
            return pq.read_table(self.path, columns=[column])[column].combine_chunks()
        matrix = np.load(self.npy, mmap_mode="r")
        flat = pa.array(np.asarray(matrix, dtype=np.float32).reshape(-1))
        return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])


def discover(source: str, column: str) -> tuple[str, list[_Unit]]:
    """(layout, units) of SOURCE; configuration problems are raised here, before anything is written."""
    root = Path(source).expanduser().resolve()
    if not root.exists():
        raise MissingInput(f"import source {source!r} does not exist")
    if root.is_dir() and (root / "metadata").is_dir() and (root / column).is_dir():
        return "clip-retrieval", _clip_retrieval_units(root, column)
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*.parquet") if not p.name.startswith((".", "_")))
    if not files:
        raise ImportSourceError(f"no Parquet files under {root}, nor clip-retrieval {column}/ and metadata/")
    for path in files:
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowException, OSError) as exc:
            hint = " (a CSV: convert it to Parquet first)" if path.suffix.lower() in (".csv", ".tsv") else ""
            raise ImportSourceError(f"{path} is not a readable Parquet file{hint}: {exc}") from None
        if column not in schema.names or not _is_list(schema.field(column).type):
            lists = [f.name for f in schema if _is_list(f.type)]
            raise ImportSourceError(f"{path}: no list column {column!r} of vectors; columns: {schema.names}; "
                                    f"list columns: {lists}")
    return "parquet", [_Unit(shard=str(p), path=p) for p in files]


def _is_list(typ: pa.DataType) -> bool:
    return pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ)


def _clip_retrieval_units(root: Path, column: str) -> list[_Unit]:
    pattern = re.compile(rf"^{re.escape(column)}_(\d+)\.npy$")
    found = sorted((int(m.group(1)), p) for p in (root / column).iterdir() if (m := pattern.match(p.name)))
    if not found:
        raise ImportSourceError(f"no {column}_N.npy files in {root / column}")
    units = []
    for n, npy in found:
        meta = root / "metadata" / f"metadata_{n}.parquet"
        if not meta.is_file():
            raise ImportSourceError(f"{npy.name} has no matching {meta}")
        shape = np.load(npy, mmap_mode="r").shape
        rows = pq.ParquetFile(meta).metadata.num_rows
        if len(shape) != 2 or shape[0] != rows:
            raise ImportSourceError(f"{npy} has shape {shape} but {meta.name} has {rows} rows")
        units.append(_Unit(shard=str(npy), path=meta, npy=npy))
    return units


def key_column(cfg: ImportConfig, layout: str, schema: pa.Schema, sample: pa.Table) -> str:
    """The column the keys come from: `key_column`, else a default, else an error naming candidates."""
    if cfg.key_column:
        if cfg.key_column not in schema.names:
            raise ImportSourceError(f"no key column {cfg.key_column!r}; columns: {_meta_names(schema)}")
        return cfg.key_column
    for name in _DEFAULT_KEYS[layout]:
        if name in schema.names:
            return name
    candidates = [f.name for f in schema if _unique_id_column(sample, f)]
    raise ImportSourceError(
        f"no 'key' column: pass `key_column`; candidates (unique string/integer columns): {candidates}; "
        f"all columns: {_meta_names(schema)}", argument="key_column")


def _unique_id_column(table: pa.Table, fld: pa.Field) -> bool:
    if _PANDAS_INDEX.match(fld.name) or _family(fld.type) not in ("int", "text"):
        return False
    col = table[fld.name]
    return col.null_count == 0 and len(pc.unique(col)) == len(col)


def _meta_names(schema: pa.Schema) -> list[str]:
    return [n for n in schema.names if not _PANDAS_INDEX.match(n)]


def _fills_typed(fld: pa.Field) -> bool:
    """A column named exactly like one of the store's typed ones (width, caption…), of its type: kept so."""
    typed = TYPED_COLUMNS.get(fld.name)
    return (typed is not None and fld.name not in CORE_COLUMNS
            and (pa.types.is_null(fld.type) or _family(typed) == _family(fld.type)))


def store_names(schema: pa.Schema) -> list[str]:
    """The store column of each metadata column: the rule every metadata field follows (store/parts.py
    `metadata_columns`: `meta_<name>` for the store's own names compared without case, `Embedding` →
    `meta_Embedding`; names differing only in case get `_2`…), except a typed column of its own type."""
    names = metadata_columns(schema.names, keep={f.name for f in schema if _fills_typed(f)})
    return [names[n] for n in schema.names]


def _family(typ: pa.DataType) -> str:
    if pa.types.is_integer(typ):
        return "int"
    return "text" if pa.types.is_string(typ) or pa.types.is_large_string(typ) else str(typ)


def vector_lengths(vectors: pa.Array) -> np.ndarray:
    """Length of each row's vector, -1 for a null vector."""
    if pa.types.is_fixed_size_list(vectors.type):
        lengths = np.full(len(vectors), vectors.type.list_size, dtype=np.int64)
    else:
        lengths = np.diff(vectors.offsets.to_numpy()).astype(np.int64)
    valid = np.asarray(vectors.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    return np.where(valid, lengths, -1)


def to_matrix(vectors: pa.Array, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows × dim float32 matrix, vector_lengths); rows of another length (or null) are left zero."""
    lengths = vector_lengths(vectors)
    if pa.types.is_fixed_size_list(vectors.type):
        size = vectors.type.list_size
        values = vectors.values.slice(vectors.offset * size, len(vectors) * size)
        starts = np.arange(len(vectors), dtype=np.int64) * size
    else:
        values, starts = vectors.values, vectors.offsets.to_numpy()[:-1].astype(np.int64)
    matrix = np.zeros((len(vectors), dim), dtype=np.float32)
    good = lengths == dim
    if good.any():
        flat = values.to_numpy(zero_copy_only=False).astype(np.float32)
        matrix[good] = flat[starts[good][:, None] + np.arange(dim)]
    return matrix, lengths


def infer_dim(units: list[_Unit], column: str) -> int:
    """The most common vector length in the first unit that has any vectors."""
    for unit in units:
        lengths = vector_lengths(unit.vectors(column))
        counts = Counter(lengths[lengths > 0].tolist())
        if counts:
            return counts.most_common(1)[0][0]
    raise ImportSourceError(f"no vectors found in column {column!r} of any source file")


def check_rows(keys: list, matrix: np.ndarray, lengths: np.ndarray, dim: int,
               seen: set[str]) -> tuple[list[int], dict[int, str]]:
    """(indices of rows to import, {row: error}); updates `seen` with the imported keys."""
    norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
    finite = np.isfinite(matrix).all(axis=1)
    keep, errors = [], {}
    for i, key in enumerate(keys):
        if key is None or key == "":
            errors[i] = "null or empty key"
        elif lengths[i] < 0:
            errors[i] = "missing (null) embedding"
        elif lengths[i] != dim:
            errors[i] = f"embedding has {lengths[i]} values, the table's dimension is {dim}"
        elif not finite[i]:
            errors[i] = "embedding contains NaN or infinite values"
        elif norms[i] == 0:
            errors[i] = "embedding is all zeros"
        elif key in seen:
            errors[i] = f"duplicate key {key!r}: the first row with this key was kept"
        else:
            seen.add(key)
            keep.append(i)
    return keep, errors


def renormalise(matrix: np.ndarray) -> tuple[np.ndarray, int]:
    """Rows off unit norm by more than NORM_TOLERANCE scaled to unit length; (matrix, how many)."""
    norms = np.linalg.norm(matrix.astype(np.float64), axis=1)
    off = np.abs(norms - 1.0) > NORM_TOLERANCE
    matrix = matrix.copy()
    matrix[off] = (matrix[off] / norms[off, None]).astype(np.float32)
    return matrix, int(off.sum())


def url_column(cfg: ImportConfig, schema: pa.Schema) -> str:
    """The store column of `image_url_column` ('' for none); a column the source lacks is refused."""
    if not cfg.image_url_column:
        return ""
    if cfg.image_url_column not in schema.names or cfg.image_url_column == cfg.embedding_column:
        raise ImportSourceError(f"no image URL column {cfg.image_url_column!r}; columns: {_meta_names(schema)}",
                                argument="image_url_column")
    return dict(zip(schema.names, store_names(schema)))[cfg.image_url_column]


def table_entry(cfg: ImportConfig, source: str, dim: int, image_url_column: str = "") -> TableEntry:
    return TableEntry(image_url_column=image_url_column,
        name=cfg.table, kind="image", model=cfg.model_name or cfg.embedding_column, model_ref="",
        pretrained="imported", preprocess=f"unknown: imported from {source} column {cfg.embedding_column}",
        dim=dim, dtype="float32", source=source, artlens_version=__version__)


def _existing_keys(cfg: ImportConfig) -> set[str]:
    with store.open(cfg.store) as s:
        return {k for k in s.sql(f'SELECT key FROM "{cfg.table}"')["key"].to_pylist() if k is not None}


def run_import(cfg: ImportConfig) -> ImportSummary:
    layout, units = discover(cfg.source, cfg.embedding_column)
    source = str(Path(cfg.source).expanduser().resolve())
    sample = units[0].metadata(cfg.embedding_column)
    key_col = key_column(cfg, layout, sample.schema, sample)
    dim = infer_dim(units, cfg.embedding_column)
    urls = url_column(cfg, sample.schema)
    writer = TableWriter(cfg.store, table_entry(cfg, source, dim, urls), overwrite=cfg.overwrite)
    todo = [u for u in units if not writer.is_done(u.shard)]
    summary = ImportSummary(table=cfg.table, files=len(units), files_skipped=len(units) - len(todo), dim=dim)
    seen = _existing_keys(cfg) if todo else set()
    for unit in todo:
        _import_unit(unit, cfg.embedding_column, key_col, dim, writer, seen, summary)
    entry = writer.finish()
    summary.table_rows, summary.schema_conflicts = entry.rows, entry.conflicts()
    return summary


def _import_unit(unit: _Unit, column: str, key_col: str, dim: int, writer: TableWriter,
                 seen: set[str], summary: ImportSummary) -> None:
    meta, vectors = unit.metadata(column), unit.vectors(column)
    if key_col not in meta.column_names:
        raise ImportSourceError(f"{unit.path}: no key column {key_col!r}; columns: {_meta_names(meta.schema)}")
    keys = [None if k is None else str(k) for k in meta[key_col].to_pylist()]
    matrix, lengths = to_matrix(vectors, dim)
    keep, errors = check_rows(keys, matrix, lengths, dim, seen)
    matrix, renormalised = renormalise(matrix[keep])
    meta = meta.drop_columns([n for n in meta.column_names
                              if _PANDAS_INDEX.match(n) or (n == key_col and fold(n) == "key")])
    meta = meta.rename_columns(store_names(meta.schema)).take(keep)
    meta_rows = meta.to_pylist() if meta.num_columns else [{}] * len(keep)
    rows = [{"key": keys[i], "shard": unit.shard, **row} for i, row in zip(keep, meta_rows)]
    failures = [Failure(keys[i], unit.shard, "import", f"row {i}: {err}").as_row() for i, err in errors.items()]
    writer.commit(unit.shard, rows, matrix, failures)
    summary.files_committed += 1
    summary.rows += len(rows)
    summary.failures += len(failures)
    summary.renormalised += renormalised
