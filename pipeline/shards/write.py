"""`artlens shards`: a source of paintings → WebDataset shards (00000.tar, …) and a manifest.

Every image is decoded once as it is written (the same decoder the extractor uses); the ones that fail
go to the manifest's `failures` list with the reason. Keys are derived from source paths: no dots
(WebDataset splits the extension at the first dot), unique (a numeric suffix on collision).
"""
from __future__ import annotations

import io
import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import webdataset as wds
from PIL import Image
from tqdm import tqdm

from artlens import __version__
from artlens.errors import OutputExists
from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.imaging.decode import ImageRejected, decode_image, open_checked
from artlens.pipeline.shards.hf import describe_source
from artlens.pipeline.shards.sources import SourceItem, source_for, source_format

FORMAT_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "BMP": "bmp", "GIF": "gif", "TIFF": "tif",
              "MPO": "jpg"}
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass
class ShardsManifest:
    source: str
    format: str
    shards: list[dict] = field(default_factory=list)
    samples: int = 0
    failures: list[dict] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    artlens_version: str = __version__

    def write(self, out: Path) -> Path:
        path = out / "manifest.json"
        tmp = out / ".manifest.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=1, ensure_ascii=False, default=str))
        os.replace(tmp, path)
        return path


class KeyMaker:
    """Source path → a unique, dot-free key: 'Baroque/rembrandt_x.y.jpg' → 'Baroque__rembrandt_x_y'."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, source_path: str) -> str:
        stem = source_path.rsplit(".", 1)[0] if "." in Path(source_path).name else source_path
        base = "__".join(_KEY_UNSAFE.sub("_", part).strip("_") or "x" for part in stem.split("/"))[:180]
        key, n = base, 1
        while key in self.used:
            key, n = f"{base}_{n}", n + 1
        self.used.add(key)
        return key


def _image_ext(item: SourceItem, img_format: str | None) -> str:
    return FORMAT_EXT.get(img_format or "", Path(item.source_path).suffix.lower().lstrip(".") or "img")


def _reencode(image: Image.Image, max_side: int, img_format: str | None) -> tuple[bytes, str]:
    image = image.copy()
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if img_format == "JPEG":
        image.save(buf, "JPEG", quality=95)
        return buf.getvalue(), "jpg"
    image.save(buf, "PNG")
    return buf.getvalue(), "png"


def prepare(item: SourceItem, key: str, cfg: ShardsConfig) -> dict:
    """A validated WebDataset sample dict; raises ImageRejected with the reason."""
    if item.data is None:
        raise ImageRejected(item.error or "no data")
    image = decode_image(item.data, cfg.max_pixels)
    img_format = open_checked(item.data, cfg.max_pixels).format  # header only; decoding succeeded above
    meta = {**item.meta, "source_path": item.source_path}
    data, ext = item.data, _image_ext(item, img_format)
    if cfg.max_side and max(image.size) > cfg.max_side:
        meta.update(original_width=image.width, original_height=image.height)
        data, ext = _reencode(image, cfg.max_side, img_format)
    return {"__key__": key, ext: data, "json": _json(meta)}


def _json(meta: dict) -> bytes:
    """The sample's `.json` member; metadata too deep (or otherwise unwritable) rejects the sample."""
    try:
        return json.dumps(meta, ensure_ascii=False, default=str).encode()
    except (RecursionError, ValueError, TypeError) as exc:
        raise ImageRejected(f"metadata cannot be written as JSON: {type(exc).__name__}: {exc}") from None


class ShardWriter:
    """Writes samples into numbered shards, each to a temporary name renamed into place when full."""

    def __init__(self, out: Path, shard_size: int):
        self.out, self.shard_size = out, shard_size
        self.index, self.count, self.writer, self.tmp = 0, 0, None, None
        self.shards: list[dict] = []

    def write(self, sample: dict) -> None:
        if self.writer is None:
            self.tmp = self.out / f".{self.index:05d}.tar.tmp"
            self.writer = wds.TarWriter(str(self.tmp), mtime=0)
        self.writer.write(sample)
        self.count += 1
        if self.count == self.shard_size:
            self.close_shard()

    def close_shard(self) -> None:
        if self.writer is None:
            return
        self.writer.close()
        name = f"{self.index:05d}.tar"
        os.replace(self.tmp, self.out / name)
        self.shards.append({"name": name, "samples": self.count})
        self.index, self.count, self.writer = self.index + 1, 0, None

    def discard(self) -> None:
        """Drop the shard being written: a run that stops leaves no temporary file behind."""
        writer, self.writer = self.writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the file is removed either way
                pass
        if self.tmp is not None:
            self.tmp.unlink(missing_ok=True)


def prepare_trusted(item: SourceItem, key: str, cfg: ShardsConfig) -> dict:
    """A sample dict for bytes this project just encoded itself (benchmark corpora): no decode check."""
    meta = {**item.meta, "source_path": item.source_path}
    return {"__key__": key, item.source_path.rsplit(".", 1)[-1]: item.data,
            "json": json.dumps(meta, ensure_ascii=False, default=str).encode()}


def write_shards(cfg: ShardsConfig, items: Iterable[SourceItem] | None = None,
                 prepare: Callable[[SourceItem, str, ShardsConfig], dict] = prepare) -> ShardsManifest:
    items = source_for(cfg) if items is None else items  # a bad source fails here, before any output
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    stale = sorted(out.glob("[0-9][0-9][0-9][0-9][0-9].tar"))
    if stale:
        raise OutputExists(f"{out} already holds shards ({stale[0].name}, …); choose an empty `out`", argument="out")
    manifest = ShardsManifest(source=describe_source(cfg.source), format=source_format(cfg))  # the format detected
    writer, keys = ShardWriter(out, cfg.shard_size), KeyMaker()
    try:
        for item in tqdm(items, unit="img", desc="shards", disable=not cfg.progress):
            try:
                writer.write(prepare(item, keys(item.source_path), cfg))
                manifest.samples += 1
            except ImageRejected as exc:
                manifest.failures.append({"source_path": item.source_path, "reason": str(exc)})
        writer.close_shard()
    except BaseException:
        writer.discard()
        raise
    manifest.shards = writer.shards
    manifest.write(out)
    return manifest

