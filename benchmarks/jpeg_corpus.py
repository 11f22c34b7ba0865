"""The extraction benchmark's corpus: JPEG paintings of typical art-dataset sizes, made by this project's code.

A few hundred procedural paintings (pipeline.sample) are rendered large once; every corpus image is a seeded
crop of one of them, resized so its longer side is 512–1024 px, with a fine paint grain added so JPEG files
weigh what real paintings do (about 0.4 bytes per pixel at quality 90, like the scans in
../shared/data/paintings: 0.12–0.71, median 0.37). Images are made in a process pool and written as shards in
a fixed order, so the same arguments give the same bytes.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from functools import partial
from multiprocessing import get_context

import numpy as np
from PIL import Image

from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.demo.paintings import iter_paintings
from artlens.pipeline.shards.write import ShardsManifest, prepare_trusted, write_shards
from artlens.pipeline.shards.sources import SourceItem

BASE_SIZE = (1088, 1088)


@dataclass(frozen=True)
class CorpusSpec:
    n: int = 20_000
    min_side: int = 512          # range of the longer side, pixels
    max_side: int = 1024
    bases: int = 240             # distinct rendered paintings the corpus is cut from
    grain: float = 7.0           # std of the added grain, in 8-bit levels
    quality: int = 90
    shard_size: int = 1000
    seed: int = 0

    def __post_init__(self) -> None:
        if not 16 <= self.min_side <= self.max_side <= min(BASE_SIZE):
            raise ValueError(f"sides must satisfy 16 <= min_side <= max_side <= {min(BASE_SIZE)}")
        if self.n < 1 or self.bases < 1:
            raise ValueError("n and bases must be positive")


def _base(i: int, seed: int) -> tuple[np.ndarray, dict]:
    _, image, labels = next(iter_paintings(1, seed=seed * 100_003 + i, size=BASE_SIZE))
    return np.asarray(image), labels


def _variant(base: np.ndarray, i: int, spec: CorpusSpec) -> bytes:
    rng = np.random.default_rng([spec.seed, i])
    long_side = int(rng.integers(spec.min_side, spec.max_side + 1))
    aspect = float(rng.uniform(0.62, 1.6))                  # portrait to landscape formats
    h, w = base.shape[:2]
    cw, ch = (w, int(w / aspect)) if aspect >= 1 else (int(h * aspect), h)
    x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    out = (long_side, max(16, round(long_side / aspect))) if aspect >= 1 else (max(16, round(long_side * aspect)), long_side)
    image = Image.fromarray(base[y:y + ch, x:x + cw]).resize(out, Image.Resampling.BILINEAR)
    pixels = np.asarray(image, dtype=np.float32)
    pixels += rng.normal(0.0, spec.grain, pixels.shape[:2])[..., None]  # luminance grain, like canvas and brush
    buf = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=spec.quality)
    return buf.getvalue()


def _base_of(i: int, spec: CorpusSpec) -> int:
    """Consecutive images share a base painting, so a worker renders each base once."""
    return i * min(spec.bases, spec.n) // spec.n


_CACHE: dict[int, tuple[np.ndarray, dict]] = {}


def _make(i: int, spec: CorpusSpec) -> SourceItem:
    b = _base_of(i, spec)
    if b not in _CACHE:
        _CACHE.clear()
        _CACHE[b] = _base(b, spec.seed)
    base, labels = _CACHE[b]
    return SourceItem(source_path=f"bench-{i:06d}.jpg", data=_variant(base, i, spec), meta={**labels, "base": b})


def write_bench_corpus(out: str, spec: CorpusSpec, processes: int = 1, progress: bool = True) -> ShardsManifest:
    """Write spec.n JPEGs as shards under `out` (which must not hold shards yet)."""
    cfg = ShardsConfig(source=f"artlens-bench-corpus({spec})", out=out, format="bench",
                       shard_size=spec.shard_size, progress=progress)
    if processes <= 1:
        return write_shards(cfg, (_make(i, spec) for i in range(spec.n)), prepare_trusted)
    per_base = -(-spec.n // min(spec.bases, spec.n))
    with get_context("spawn").Pool(processes) as pool:
        items = pool.imap(partial(_make, spec=spec), range(spec.n), chunksize=per_base)
        return write_shards(cfg, items, prepare_trusted)
