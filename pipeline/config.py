"""One frozen config object per command."""
from __future__ import annotations

from dataclasses import dataclass, field

from .decode import DEFAULT_MAX_PIXELS

PRECISION_NAMES = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class ModelSpec:
    model: str = "ViT-B-32"          # open_clip name, or path to an open_clip JSON model config
    pretrained: str = "openai"        # tag, checkpoint path, or 'random'
    precision: str = "fp32"
    device: str = "auto"
    seed: int = 0
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.precision not in PRECISION_NAMES:
            raise ValueError(f"unknown precision {self.precision!r}; choose from {PRECISION_NAMES}")


@dataclass(frozen=True)
class ExtractConfig:
    shards: str
    store: str
    table: str
    model: ModelSpec = field(default_factory=ModelSpec)
    batch_size: int = 64
    workers: int = 2
    max_pixels: int = DEFAULT_MAX_PIXELS
    overwrite: bool = False
    strict: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.workers < 0:
            raise ValueError(f"--workers must be 0 or more, got {self.workers}")
        if self.max_pixels < 1:
            raise ValueError(f"--max-pixels must be positive, got {self.max_pixels}")


@dataclass(frozen=True)
class ShardsConfig:
    source: str
    out: str
    format: str = "folder"
    metadata: str | None = None
    shard_size: int = 1000
    max_side: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS
    image_column: str | None = None
    class_file: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise ValueError(f"--shard-size must be at least 1, got {self.shard_size}")
        if self.max_side is not None and self.max_side < 16:
            raise ValueError(f"--max-side must be at least 16 pixels, got {self.max_side}")
