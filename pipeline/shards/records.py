"""A raw tar sample → the image bytes to embed and the row of columns stored beside its embedding.

Shards written by `artlens shards` and by img2dataset are read as they are: the image is the first of
IMAGE_EXTS present, `.txt` is the caption, `.json` fields become columns.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from artlens.errors import UserError
from artlens.store.parts import RESERVED_COLUMNS, metadata_columns
from artlens.pipeline.shards.tarsamples import RawSample

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
#: Columns artlens fills itself; metadata fields named like them (without case, as DuckDB compares names)
#: are kept as `meta_<name>` (the rule of store/parts.py `metadata_columns`, shared with `artlens import`).
RESERVED = RESERVED_COLUMNS
#: Metadata fields that fill a core column when the sample does not already give it.
PROMOTED = ("source_path", "caption")
#: Columns of text: a `.json` value of another type there (a number, an object) is stored as its JSON text.
TEXT_COLUMNS = ("source_path", "caption")
#: The deepest nesting of a `.json` value kept (objects and lists are stored as JSON text); a deeper one makes
#: the sample a failure row (Python's JSON reader and writer recurse: a few thousand levels stop a run).
MAX_METADATA_DEPTH = 64
#: Integers kept as numbers (Arrow int64); an integer outside this range is stored as its decimal text.
INT64_RANGE = range(-2**63, 2**63)


class RecordError(UserError):
    """A sample that cannot become a record (no image, bad metadata); recorded as a failure of `stage`."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage = stage


@dataclass
class Record:
    key: str
    shard: str
    image: bytes
    row: dict
    image_offset: int | None = None   # where `image` starts in the shard file (plain local tars)


def image_ext(sample: RawSample) -> str:
    for ext in IMAGE_EXTS:
        if ext in sample.files:
            return ext
    present = ", ".join(sorted(sample.files)) or "nothing"
    raise RecordError("read", f"sample has no image member (found: {present})")


def metadata(sample: RawSample) -> dict:
    raw = sample.files.get("json")
    if raw is None:
        return {}
    try:
        meta = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise RecordError("metadata", f".json metadata is nested too deeply to read (artlens keeps "
                                      f"{MAX_METADATA_DEPTH} levels)") from None
    except ValueError as exc:  # not UTF-8, not JSON, or an integer of over 4,300 digits
        raise RecordError("metadata", f"invalid .json metadata: {exc}") from exc
    if not isinstance(meta, dict):
        raise RecordError("metadata", f".json metadata is a {type(meta).__name__}, not an object")
    return meta


def _text_error(name: str, text: str) -> RecordError | None:
    """A RecordError when `text` cannot be stored (a lone surrogate from a JSON escape such as "\\ud800")."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return RecordError("metadata", f".json field {name!r} holds {exc.object[exc.start:exc.end]!r}, a lone "
                                       "surrogate, which is not Unicode text")
    return None


def _check_nested(name: str, value: dict | list) -> None:
    """Refuse an object or list nested deeper than MAX_METADATA_DEPTH or holding text that cannot be stored."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_METADATA_DEPTH:
            raise RecordError("metadata", f".json field {name!r} is nested over {MAX_METADATA_DEPTH} levels deep")
        for children in (item.keys(), item.values()) if type(item) is dict else (item,):
            for child in children:
                kind = type(child)
                if kind is dict or kind is list:
                    stack.append((child, depth + 1))
                elif kind is str and not child.isascii() and (error := _text_error(name, child)):
                    raise error


def storable(row: dict) -> dict:
    """The row with every value in a form the store writes (in place): integers outside int64 as decimal text,
    non-text `source_path`/`caption` as JSON text. Raises RecordError("metadata") for nesting deeper than
    MAX_METADATA_DEPTH and for text that is not Unicode (field names included). Values that fit keep their type."""
    for name, value in row.items():
        if not name.isascii() and (error := _text_error(name, name)):
            raise error
        kind = type(value)
        if kind is str:
            if not value.isascii() and (error := _text_error(name, value)):
                raise error
            continue
        if kind is int:
            if value not in INT64_RANGE:
                row[name] = value = str(value)
        elif kind is dict or kind is list:
            _check_nested(name, value)
        if value is not None and name in TEXT_COLUMNS and type(value) is not str:
            row[name] = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return row


def caption(sample: RawSample) -> str | None:
    raw = sample.files.get("txt")
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError("metadata", f".txt caption is not UTF-8: {exc}") from exc


def to_record(sample: RawSample) -> Record:
    ext = image_ext(sample)
    meta = metadata(sample)
    row: dict = {"key": sample.key, "shard": sample.shard, "source_path": None, "caption": caption(sample),
                 "width": None, "height": None}
    for name in PROMOTED:
        if row.get(name) is None and name in meta:
            row[name] = meta.pop(name)
    for name in PROMOTED:
        if name in meta and row[name] == meta[name]:
            del meta[name]  # e.g. img2dataset repeats the .txt caption in .json
    for name, column in metadata_columns(meta).items():
        row[column] = meta[name]
    return Record(key=sample.key, shard=sample.shard, image=sample.files[ext], row=storable(row),
                  image_offset=sample.offsets.get(ext))
