"""`ShardsConfig`: the one config of `artlens shards`, shared by the CLI and the Python API."""
from __future__ import annotations

from dataclasses import dataclass

from artlens.errors import UserError
from artlens.pipeline.imaging.decode import DEFAULT_MAX_PIXELS


@dataclass(frozen=True)
class ShardsConfig:
    source: str
    out: str
    format: str = "folder"
    metadata: str | None = None
    metadata_encoding: str | None = None   # of `metadata` and `class_file`; default: by byte-order mark, else UTF-8
    shard_size: int = 1000
    max_side: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    image_column: str | None = None
    class_file: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise UserError(f"shard_size must be at least 1, got {self.shard_size}", argument="shard_size")
        if self.max_side is not None and self.max_side < 16:
            raise UserError(f"max_side must be at least 16 pixels, got {self.max_side}", argument="max_side")
