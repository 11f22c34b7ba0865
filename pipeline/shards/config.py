"""`ShardsConfig`: the one config of `artlens shards`, shared by the CLI and the Python API."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from artlens.errors import UserError
from artlens.pipeline.imaging.decode import DEFAULT_MAX_PIXELS
from artlens.pipeline.shards.metatypes import parse_types


@dataclass(frozen=True)
class ShardsConfig:
    source: Any   # a path or URL (str); for `format` hf also a `datasets.Dataset` / `DatasetDict`
    out: str
    format: str = "folder"
    metadata: str | None = None
    metadata_encoding: str | None = None   # of `metadata` and `class_file`; default: by byte-order mark, else UTF-8
    #: forced types of metadata columns: {"rating": "float"}, "rating=float,id=str", or several such texts;
    #: kept as (column, type) pairs. Other columns' types are inferred (pipeline/shards/metatypes.py).
    metadata_types: Any = None
    shard_size: int = 1000
    max_side: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    image_column: str | None = None
    class_file: str | None = None
    split: str | None = None    # hf: the split(s) to read, comma-separated (default: all)
    subset: str | None = None   # hf: the dataset's config (subset) to read (default: the first, or all files)
    progress: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata_types", parse_types(self.metadata_types))
        if self.shard_size < 1:
            raise UserError(f"shard_size must be at least 1, got {self.shard_size}", argument="shard_size")
        if self.max_side is not None and self.max_side < 16:
            raise UserError(f"max_side must be at least 16 pixels, got {self.max_side}", argument="max_side")
