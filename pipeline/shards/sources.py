"""Where paintings come from before they are sharded: a registry of source readers.

Each source checks its arguments when called (so a bad path or metadata file is reported before any
output is made) and returns an iterator of SourceItem(source_path, data, meta); a `data` of None with an
`error` marks an item that could not be read, which the shard writer reports in the manifest.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from artlens.errors import UserError
from artlens.pipeline.shards import metatypes
from artlens.pipeline.shards.config import ShardsConfig

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
JOIN_COLUMNS = ("source_path", "path", "relative_path", "file", "filename", "file_name", "image", "name")


class SourceError(UserError):
    """A source, metadata or class file that cannot be read as asked."""


@dataclass
class SourceItem:
    source_path: str
    data: bytes | None
    meta: dict = field(default_factory=dict)
    error: str | None = None


# ---------------------------------------------------------------- metadata files
#: Byte-order marks and the encoding they announce (UTF-32's first, as its LE mark starts like UTF-16's).
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def read_text(path: str | Path, what: str = "metadata file", encoding: str | None = None) -> str:
    """A text file's contents: in `encoding` when given, else as its byte-order mark says (UTF-8, UTF-16 or
    UTF-32, as spreadsheets export them), else UTF-8. Text it cannot decode is a one-line SourceError
    naming the file, the byte and its offset, and `metadata_encoding`."""
    data = Path(path).read_bytes()
    if encoding:
        try:
            enc = codecs.lookup(encoding).name
        except LookupError:
            raise SourceError(f"unknown metadata_encoding {encoding!r} (e.g. utf-8, utf-16, latin-1, cp1252)",
                              argument="metadata_encoding") from None
        enc = "utf-8-sig" if enc == "utf-8" else enc
    else:
        enc = next((e for bom, e in _BOMS if data.startswith(bom)), "utf-8")
    head = data[:4096]
    utf16 = SourceError(f"{what} {path} holds NUL bytes: it looks like UTF-16 without a byte-order mark; pass "
                        "`metadata_encoding` utf-16-le (or utf-16-be)", argument="metadata_encoding")
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as exc:
        if not encoding and head.count(0) * 4 >= len(head):  # text of UTF-16: every other byte NUL, mostly
            raise utf16 from None
        raise SourceError(f"{what} {path} is not {enc} text (byte 0x{data[exc.start]:02x} at offset {exc.start}: "
                          f"{exc.reason}); save it as UTF-8, or pass `metadata_encoding` with its encoding "
                          "(e.g. latin-1, cp1252, utf-16)", argument="metadata_encoding") from None
    if "\0" in text and not encoding:
        raise utf16
    return text


def read_metadata_rows(path: str, encoding: str | None = None, types=()) -> list[dict]:
    """Rows of a CSV (with header) or JSONL file (encoding: see `read_text`), with typed values: a CSV's
    column types inferred by pyarrow (`metatypes.csv_rows`), a JSONL's as written (int and float mixed in one
    column: float); the join column stays text; `types` ((column, type) pairs, `metatypes.parse_types`)
    forces columns' types."""
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"metadata file {path} does not exist")
    text = read_text(p, encoding=encoding)
    forced = metatypes.parse_types(types)
    if p.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except RecursionError:
                    raise SourceError(f"{path}:{n}: JSON line nested too deeply to read") from None
                except ValueError as exc:  # JSONDecodeError, and integers of more digits than Python converts
                    raise SourceError(f"{path}:{n}: invalid JSON line: {exc}") from None
                if not isinstance(rows[-1], dict):
                    raise SourceError(f"{path}:{n}: a JSON line must be an object, got a {type(rows[-1]).__name__}")
        names = list(dict.fromkeys(k for row in rows for k in row))
        metatypes.unify_numbers(rows, skip=[c for c, _ in forced])
    else:
        header = next(csv.reader(io.StringIO(text, newline="")), [])
        join = next((c for c in JOIN_COLUMNS if c in header), None)
        try:
            rows, names = metatypes.csv_rows(text, path, keep_text=[join, *(c for c, _ in forced)])
        except (pa.ArrowInvalid, csv.Error) as exc:
            raise SourceError(f"{path}: not a readable CSV file: {str(exc).splitlines()[0]}") from None
    metatypes.force_types(rows, forced, path, names)
    return rows


def metadata_index(rows: list[dict], path: str) -> tuple[str, dict[str, dict]]:
    """Index metadata rows by their join column (the first of JOIN_COLUMNS present)."""
    if not rows:
        return "", {}
    column = next((c for c in JOIN_COLUMNS if c in rows[0]), None)
    if column is None:
        raise SourceError(f"metadata {path} needs one of the columns {JOIN_COLUMNS} to join on; "
                          f"found {list(rows[0])}")
    index = {}
    for row in rows:
        ref = "" if row.get(column) is None else str(row[column]).replace("\\", "/")
        ref = ref[2:] if ref.startswith("./") else ref
        index[ref] = {k: v for k, v in row.items() if k != column}
    return column, index


# ---------------------------------------------------------------- sources
def folder_source(cfg: ShardsConfig) -> Iterator[SourceItem]:
    root = Path(cfg.source)
    if not root.is_dir():
        raise SourceError(f"{cfg.source} is not a directory")
    index: dict[str, dict] = {}
    if cfg.metadata:
        rows = read_metadata_rows(cfg.metadata, cfg.metadata_encoding, cfg.metadata_types)
        _, index = metadata_index(rows, cfg.metadata)
    return _folder_items(root, index)


def _folder_items(root: Path, index: dict[str, dict]) -> Iterator[SourceItem]:
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
        rel = path.relative_to(root).as_posix()
        meta = index.get(rel, index.get(path.name, {}))
        yield _read_file(path, rel, meta)


def _read_file(path: Path, rel: str, meta: dict) -> SourceItem:
    try:
        return SourceItem(rel, path.read_bytes(), dict(meta))
    except OSError as exc:
        return SourceItem(rel, None, dict(meta), error=f"cannot read file: {exc}")


def _wikiart_classes(class_file: str, encoding: str | None = None) -> dict[str, str]:
    classes = {}
    for n, line in enumerate(read_text(class_file, "class_file", encoding).splitlines(), 1):
        if line.strip():
            idx, _, name = line.strip().partition(" ")
            if not name:
                raise SourceError(f"{class_file}:{n}: expected 'index Name', got {line!r}")
            classes[idx] = name.strip()
    return classes


def wikiart_source(cfg: ShardsConfig) -> Iterator[SourceItem]:
    """WikiArt as distributed with ArtGAN: SRC is the image root, `metadata` a headerless split CSV of
    `relative/path.jpg,class_idx`, `class_file` the `idx Name` lines (label column named after it)."""
    if not cfg.metadata or not cfg.class_file:
        raise SourceError("`format` wikiart needs `metadata` SPLIT.csv and `class_file` CLASS.txt "
                          "(e.g. style_train.csv and style_class.txt from ArtGAN's WikiArt)",
                          argument=("format", "metadata", "class_file"))
    for option, path in (("metadata", cfg.metadata), ("class_file", cfg.class_file)):
        if not Path(path).is_file():
            raise SourceError(f"`{option}` file {path} does not exist", argument=option)
    if not Path(cfg.source).is_dir():
        raise SourceError(f"{cfg.source} is not a directory (the WikiArt image root)")
    classes = _wikiart_classes(cfg.class_file, cfg.metadata_encoding)
    return _wikiart_items(cfg, classes, read_text(cfg.metadata, "metadata file", cfg.metadata_encoding))


def _wikiart_items(cfg: ShardsConfig, classes: dict[str, str], split_text: str) -> Iterator[SourceItem]:
    label = Path(cfg.class_file).stem.replace("_class", "") or "label"
    split = Path(cfg.metadata).stem
    root = Path(cfg.source)
    # the split file was read (and decoded) by wikiart_source, before any output is made
    for n, row in enumerate(csv.reader(io.StringIO(split_text, newline="")), 1):
        if not row:
            continue
        if len(row) != 2 or row[1].strip() not in classes:
            yield SourceItem(f"{cfg.metadata}:{n}", None, error=f"bad split line {row!r}")
            continue
        rel, idx = row[0].strip(), row[1].strip()
        artist, _, title = Path(rel).stem.partition("_")
        meta = {label: classes[idx], f"{label}_idx": int(idx), "split": split,
                "artist": artist, "title": title, "folder": Path(rel).parent.as_posix()}
        yield _read_file(root / rel, rel, meta)


def find_image_column(schema: pa.Schema, wanted: str | None) -> str:
    """The column holding the images: `wanted` (checked), else the first binary or {bytes, ...} struct column."""
    if wanted:
        if wanted not in schema.names:
            raise SourceError(f"image_column {wanted!r} not in the table's columns {schema.names}",
                              argument="image_column")
        return wanted
    for fld in schema:
        if pa.types.is_binary(fld.type) or pa.types.is_large_binary(fld.type):
            return fld.name
        if pa.types.is_struct(fld.type) and "bytes" in [f.name for f in fld.type]:
            return fld.name
    raise SourceError(f"no image column (binary, or struct with 'bytes') among {schema.names}; "
                      "name it with `image_column`", argument="image_column")


def parquet_source(cfg: ShardsConfig) -> Iterator[SourceItem]:
    """A Parquet table whose image column holds bytes (Hugging Face exports: struct {bytes, path})."""
    files = sorted(Path(cfg.source).glob("*.parquet")) if Path(cfg.source).is_dir() else [Path(cfg.source)]
    if not files or not all(f.is_file() for f in files):
        raise SourceError(f"no Parquet file at {cfg.source}")
    columns = {}
    for file in files:
        try:
            schema = pq.read_schema(file)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"{file} is not a readable Parquet file: {exc}") from exc
        columns[file] = find_image_column(schema, cfg.image_column)
    return _parquet_items(columns)


def _parquet_items(columns: dict[Path, str]) -> Iterator[SourceItem]:
    for file, column in columns.items():
        yield from table_items(pq.ParquetFile(file).iter_batches(batch_size=256), column, file.name)


def table_items(batches: Iterable[pa.RecordBatch | pa.Table], column: str, name: str,
                edit: Callable[[dict], None] | None = None) -> Iterator[SourceItem]:
    """Rows of Arrow batches → items: the image from `column` (bytes, or a {bytes, path} struct), the other
    columns as metadata; `edit` changes a row (as a dict) in place first (Hugging Face ClassLabel names).
    A row without a path is named `<name>#<row number>`. Shared by Parquet files, the Hub and `datasets`."""
    row_number = 0
    for batch in batches:
        for row in batch.to_pylist():
            if edit is not None:
                edit(row)
            yield _parquet_item(row, column, f"{name}#{row_number}")
            row_number += 1


#: Fields the shard writer (write.py) sets in every sample's `.json` itself. A Parquet column of that name
#: is not overwritten: it becomes `<name>_2` (the suffix of names that collide, store/parts.py
#: `metadata_columns`), except a `source_path` column that names the image when its cell does not.
WRITER_FIELDS = ("source_path", "original_width", "original_height")


def _parquet_item(row: dict, column: str, fallback: str) -> SourceItem:
    cell = row.pop(column)
    path = None
    if isinstance(cell, dict):
        cell, path = cell.get("bytes"), cell.get("path")
    meta = {k: v for k, v in row.items() if not k.startswith("__index_level")}
    if not path and isinstance(meta.get("source_path"), str) and meta["source_path"]:
        path = meta.pop("source_path")
    for name in WRITER_FIELDS:
        if name in meta:
            i = 2
            while f"{name}_{i}" in meta:
                i += 1
            meta[f"{name}_{i}"] = meta.pop(name)
    source_path = path or fallback
    if not cell:
        return SourceItem(source_path, None, meta, error="image cell is empty or null")
    return SourceItem(source_path, bytes(cell), meta)


def hf_source(cfg: ShardsConfig) -> Iterator[SourceItem]:
    """Hugging Face datasets (pipeline/shards/hf.py, imported only when asked for)."""
    from artlens.pipeline.shards.hf import hf_source as read

    return read(cfg)


def _is_hf(source) -> bool:
    from artlens.pipeline.shards.hf import is_hf_source

    return is_hf_source(source)


SOURCES: dict[str, Callable[[ShardsConfig], Iterator[SourceItem]]] = {
    "folder": folder_source,
    "wikiart": wikiart_source,
    "parquet": parquet_source,
    "hf": hf_source,
}

#: The default format (`folder`) reads these sources as the format named beside them instead.
DETECTED: tuple[tuple[Callable[[object], bool], str], ...] = (
    (_is_hf, "hf"),   # a datasets.Dataset, an hf:// URL, a folder in the Hub's layout (README.md + Parquet)
)


def get_source(name: str) -> Callable[[ShardsConfig], Iterator[SourceItem]]:
    try:
        return SOURCES[name]
    except KeyError:
        raise SourceError(f"unknown format {name!r}; choose from {sorted(SOURCES)}", argument="format") from None


def source_format(cfg: ShardsConfig) -> str:
    """The format a config reads: `format`, or for the default one, what DETECTED recognises."""
    if cfg.format == "folder":
        return next((name for detect, name in DETECTED if detect(cfg.source)), cfg.format)
    return cfg.format


def source_for(cfg: ShardsConfig) -> Iterator[SourceItem]:
    fmt = source_format(cfg)
    if fmt == "folder" and Path(cfg.source).is_file() and cfg.source.endswith(".parquet"):
        raise SourceError(f"{cfg.source} is a Parquet file: add `format` parquet", argument="format")
    return get_source(fmt)(cfg)
