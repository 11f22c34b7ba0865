"""One frozen config object per command."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

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
        if self.precision not in PRECISION_NAMES + ("auto",):
            raise ValueError(f"unknown precision {self.precision!r}; choose from auto, {', '.join(PRECISION_NAMES)}")


DECODE_NAMES = ("auto", "gpu", "cpu")
JPEG_DECODER_NAMES = ("auto", "nvimgcodec", "torchvision")   # pipeline/gpudecode.py DECODERS


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.rsplit("/", 1)[-1].removesuffix(".json").lower()).strip("_")


def parse_models(text: str, template: ModelSpec) -> tuple[ModelSpec, ...]:
    """--models "ViT-B-32:openai,ViT-L-14:laion2b_s32b_b82k" → ModelSpecs sharing the other settings."""
    specs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        model, sep, pretrained = item.partition(":")
        if not sep or not model or not pretrained:
            raise ValueError(f"--models entry {item!r} is not MODEL:PRETRAINED (e.g. ViT-B-32:openai)")
        specs.append(replace(template, model=model, pretrained=pretrained))
    if not specs:
        raise ValueError("--models names no model")
    return tuple(specs)


@dataclass(frozen=True)
class ExtractConfig:
    shards: str
    store: str
    table: str
    model: ModelSpec = field(default_factory=ModelSpec)
    models: tuple[ModelSpec, ...] = ()   # several models over one decode: one table each, named by targets()
    batch_size: int | None = None        # None: the device's default (pipeline/model.py DEVICE_DEFAULTS)
    workers: int | None = 2              # None: one per CPU core left after the main process
    decode: str = "auto"                 # auto: nvJPEG on CUDA devices, Pillow elsewhere
    decode_threads: int = 2              # main-process threads feeding nvJPEG (H100: docs/performance.md)
    jpeg_decoder: str = "auto"           # GPU JPEG decoder (pipeline/gpudecode.py DECODERS); auto: torchvision
    only: tuple[str, ...] = ()           # restrict to these shard URLs (one device's share with --devices)
    max_pixels: int = DEFAULT_MAX_PIXELS
    overwrite: bool = False
    strict: bool = False
    progress: bool = True

    def targets(self) -> list[tuple[str, ModelSpec]]:
        """(table, model) pairs: `table` itself for one model, `<table>_<model>_<weights>` for --models."""
        if not self.models:
            return [(self.table, self.model)]
        return [(f"{self.table}_{_slug(m.model)}_{_slug(m.pretrained)}", m) for m in self.models]

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, got {self.batch_size}")
        if self.workers is not None and self.workers < 0:
            raise ValueError(f"--workers must be 0 or more, got {self.workers}")
        if self.decode_threads < 1:
            raise ValueError(f"--decode-threads must be at least 1, got {self.decode_threads}")
        if self.jpeg_decoder not in JPEG_DECODER_NAMES:
            raise ValueError(f"unknown --jpeg-decoder {self.jpeg_decoder!r}; choose from {', '.join(JPEG_DECODER_NAMES)}")
        if self.decode not in DECODE_NAMES:
            raise ValueError(f"unknown --decode {self.decode!r}; choose from {', '.join(DECODE_NAMES)}")
        tables = [t for t, _ in self.targets()]
        if len(set(tables)) != len(tables):
            raise ValueError(f"--models gives the same table twice: {tables}")
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
