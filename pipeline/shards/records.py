"""A raw tar sample → the image bytes to embed and the row of columns stored beside its embedding.

Shards written by `artlens shards` and by img2dataset are read as they are: the image is the first of
IMAGE_EXTS present, `.txt` is the caption, `.json` fields become columns.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from artlens.errors import UserError
from artlens.pipeline.shards.tarsamples import RawSample

IMAGE_EXTS = ("jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff")
#: Columns artlens fills itself; metadata fields with these names are kept as `meta_<name>`.
RESERVED = frozenset({"key", "shard", "width", "height", "embedding"})
#: Metadata fields that fill a core column when the sample does not already give it.
PROMOTED = ("source_path", "caption")


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
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError("metadata", f"invalid .json metadata: {exc}") from exc
    if not isinstance(meta, dict):
        raise RecordError("metadata", f".json metadata is a {type(meta).__name__}, not an object")
    return meta


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
    for name, value in meta.items():
        if name in PROMOTED and row.get(name) == value:
            continue  # e.g. img2dataset repeats the .txt caption in .json
        column = f"meta_{name}" if name in RESERVED or name in row else name
        row[column] = value
    return Record(key=sample.key, shard=sample.shard, image=sample.files[ext], row=row,
                  image_offset=sample.offsets.get(ext))
