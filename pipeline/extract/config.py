"""`ExtractConfig`: the one config of `artlens extract`, shared by the CLI and the Python API."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from artlens.errors import UserError

from artlens.pipeline.imaging.decode import DEFAULT_MAX_MEMBER_BYTES, DEFAULT_MAX_PIXELS
from artlens.pipeline.models.spec import ModelSpec, table_slug
from artlens.pipeline.shards.folder import DEFAULT_SHARD_SIZE, FolderSource, is_image_folder
from artlens.pipeline.shards.metatypes import parse_types

DECODE_NAMES = ("auto", "gpu", "cpu")
JPEG_DECODER_NAMES = ("auto", "nvimgcodec", "torchvision")   # pipeline/imaging/gpu/decoders.py DECODERS
ENGINE_NAMES = ("local", "ray")                              # pipeline/extract/engines/__init__.py ENGINES


@dataclass(frozen=True)
class ExtractConfig:
    shards: str
    store: str
    table: str
    model: ModelSpec = field(default_factory=ModelSpec)
    models: tuple[ModelSpec, ...] = ()   # several models over one decode: one table each, named by targets()
    batch_size: int | None = None        # None: the device's default (pipeline/models/load.py DEVICE_DEFAULTS)
    workers: int | None = None           # None (auto): CPU cores - 1, or - 2 with GPU decoding; 0: in-process
    decode: str = "auto"                 # auto: nvJPEG on CUDA devices, Pillow elsewhere
    decode_threads: int = 2              # main-process threads feeding nvJPEG (H100: docs/performance.md)
    jpeg_decoder: str = "auto"           # GPU JPEG decoder (pipeline/imaging/gpu/decoders.py DECODERS); auto: torchvision
    only: tuple[str, ...] = ()           # restrict to these shard URLs (one device's share with --devices)
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES  # a tar member declaring more is a failure row, never read
    overwrite: bool = False
    strict: bool = False
    progress: bool = True
    engine: str = "local"                # local: this process, or one per device; ray: Ray Data (engines/)
    devices: tuple[str, ...] = ()        # local engine: one process per device (engines/devices.py parse_devices)
    retries: int = 1                     # rounds more for the shards a round did not commit (retry.py)
    address: str | None = None           # ray: the cluster to join (None: start a local Ray)
    actors: int | None = None            # ray: model actors (None: one per GPU, or 1)
    # `shards` naming a folder of images (pipeline/shards/folder.py): read in place, cut into virtual shards
    folder: bool | None = None           # None: a directory without .tar files at its top is such a folder
    metadata: str | None = None          # folder: CSV/JSONL joined on relative path or file name
    metadata_encoding: str | None = None  # folder: of `metadata` (default: by byte-order mark, else UTF-8)
    metadata_types: Any = None           # folder: forced column types, as ShardsConfig's ("rating=float")
    shard_size: int = DEFAULT_SHARD_SIZE  # folder: image files per virtual shard (the unit of commit and resume)
    thumbnails: int = 0                  # after the run: cache thumbnails of this longer side (0: none; 16..2048)

    def targets(self) -> list[tuple[str, ModelSpec]]:
        """(table, model) pairs: `table` itself for one model, `<table>_<model>_<weights>` for `models`."""
        if not self.models:
            return [(self.table, self.model)]
        return [(f"{self.table}_{table_slug(m.model)}_{table_slug(m.pretrained)}", m) for m in self.models]

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {self.batch_size}", argument="batch_size")
        if self.workers is not None and self.workers < 0:
            raise UserError(f"workers must be 0 or more, got {self.workers}", argument="workers")
        if self.decode_threads < 1:
            raise UserError(f"decode_threads must be at least 1, got {self.decode_threads}",
                            argument="decode_threads")
        if self.jpeg_decoder not in JPEG_DECODER_NAMES:
            raise UserError(f"unknown jpeg_decoder {self.jpeg_decoder!r}; choose from {', '.join(JPEG_DECODER_NAMES)}",
                            argument="jpeg_decoder")
        if self.decode not in DECODE_NAMES:
            raise UserError(f"unknown decode {self.decode!r}; choose from {', '.join(DECODE_NAMES)}", argument="decode")
        tables = [t for t, _ in self.targets()]
        if len(set(tables)) != len(tables):
            raise UserError(f"models gives the same table twice: {tables}", argument="models")
        if self.max_pixels < 1:
            raise UserError(f"max_pixels must be positive, got {self.max_pixels}", argument="max_pixels")
        if self.max_member_bytes < 1:
            raise UserError(f"max_member_bytes must be positive, got {self.max_member_bytes}",
                            argument="max_member_bytes")
        if self.thumbnails and not 16 <= self.thumbnails <= 2048:
            raise UserError(f"thumbnails must be 0 (none) or a size from 16 to 2048 pixels, got {self.thumbnails}",
                            argument="thumbnails")
        self._check_engine()
        self._check_folder()

    def folder_source(self) -> FolderSource | None:
        """The folder of images `shards` names (a directory without .tar files at its top, or any directory with
        `folder`), else None. Checked here, when a run starts, not in the config: `metadata` is for a folder,
        and the ray engine reads tar shards."""
        if self.folder and ("://" in self.shards or not os.path.isdir(self.shards)):
            raise UserError(f"`folder`: {self.shards} is not a local directory", argument=("folder", "shards"))
        if self.folder is False or (self.folder is None and not is_image_folder(self.shards)):
            given = [n for n in ("metadata", "metadata_encoding", "metadata_types") if getattr(self, n)]
            if given:
                raise UserError(f"`{given[0]}` is for a folder of images; {self.shards} names tar shards, whose "
                                "metadata is in their .json members", argument=given[0])
            return None
        if self.engine == "ray":
            raise UserError("`engine` ray reads tar shards; extract a folder of images with the local engine "
                            "(or make shards of it with `artlens shards`)", argument=("engine", "shards"))
        return FolderSource(self.shards, self.shard_size, self.metadata, self.metadata_encoding, self.metadata_types)

    def _check_folder(self) -> None:
        object.__setattr__(self, "metadata_types", parse_types(self.metadata_types))
        if self.shard_size < 1:
            raise UserError(f"shard_size must be at least 1, got {self.shard_size}", argument="shard_size")

    def _check_engine(self) -> None:
        if self.engine not in ENGINE_NAMES:
            raise UserError(f"unknown engine {self.engine!r}; choose from {', '.join(ENGINE_NAMES)}", argument="engine")
        if isinstance(self.devices, str):
            raise UserError(f"devices is a tuple of device names, not {self.devices!r} (engines.devices.parse_devices "
                            "makes one from '0,1' or 'all')", argument="devices")
        if self.devices and self.engine != "local":
            raise UserError(f"`devices` is for the local engine; with `engine` {self.engine}, Ray places the actors",
                            argument=("devices", "engine"))
        if self.engine == "ray" and self.decode == "gpu":
            raise UserError("`engine` ray decodes on CPU tasks; use `decode` cpu or auto", argument=("engine", "decode"))
        if self.retries < 0:
            raise UserError(f"retries must be 0 or more, got {self.retries}", argument="retries")
        if self.actors is not None and self.actors < 1:
            raise UserError(f"actors must be at least 1, got {self.actors}", argument="actors")
