"""`ExtractConfig`: the one config of `artlens extract`, shared by the CLI and the Python API."""
from __future__ import annotations

from dataclasses import dataclass, field

from artlens.pipeline.imaging.decode import DEFAULT_MAX_PIXELS
from artlens.pipeline.models.spec import ModelSpec, table_slug

DECODE_NAMES = ("auto", "gpu", "cpu")
JPEG_DECODER_NAMES = ("auto", "nvimgcodec", "torchvision")   # pipeline/imaging/gpu/decoders.py DECODERS


@dataclass(frozen=True)
class ExtractConfig:
    shards: str
    store: str
    table: str
    model: ModelSpec = field(default_factory=ModelSpec)
    models: tuple[ModelSpec, ...] = ()   # several models over one decode: one table each, named by targets()
    batch_size: int | None = None        # None: the device's default (pipeline/models/load.py DEVICE_DEFAULTS)
    workers: int | None = 2              # None: one per CPU core left after the main process
    decode: str = "auto"                 # auto: nvJPEG on CUDA devices, Pillow elsewhere
    decode_threads: int = 2              # main-process threads feeding nvJPEG (H100: docs/performance.md)
    jpeg_decoder: str = "auto"           # GPU JPEG decoder (pipeline/imaging/gpu/decoders.py DECODERS); auto: torchvision
    only: tuple[str, ...] = ()           # restrict to these shard URLs (one device's share with --devices)
    max_pixels: int = DEFAULT_MAX_PIXELS
    overwrite: bool = False
    strict: bool = False
    progress: bool = True

    def targets(self) -> list[tuple[str, ModelSpec]]:
        """(table, model) pairs: `table` itself for one model, `<table>_<model>_<weights>` for --models."""
        if not self.models:
            return [(self.table, self.model)]
        return [(f"{self.table}_{table_slug(m.model)}_{table_slug(m.pretrained)}", m) for m in self.models]

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
