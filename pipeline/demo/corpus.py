"""`artlens sample`: the project's own demo corpus, procedurally drawn paintings (`paintings`) written as shards."""
from __future__ import annotations

import io
from dataclasses import dataclass

from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.demo.paintings import iter_paintings
from artlens.pipeline.shards.write import ShardsManifest, write_shards
from artlens.pipeline.shards.sources import SourceItem


def _items(n: int, seed: int):
    for i, (name, image, labels) in enumerate(iter_paintings(n, seed=seed)):
        buf = io.BytesIO()
        fmt, ext = ("PNG", "png") if i % 10 == 9 else ("JPEG", "jpg")  # mostly JPEG, some PNG, like real sets
        image.save(buf, fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        yield SourceItem(source_path=f"{name}.{ext}", data=buf.getvalue(), meta=labels)


@dataclass(frozen=True)
class SampleConfig:
    """The one config of `artlens sample`, shared by the CLI and the Python API."""
    out: str
    n: int = 240                  # paintings
    seed: int = 0
    shard_size: int = 64
    progress: bool = True


def write_sample_corpus(cfg: SampleConfig) -> ShardsManifest:
    shards = ShardsConfig(source=f"artlens-sample(n={cfg.n}, seed={cfg.seed})", out=cfg.out, format="sample",
                          shard_size=cfg.shard_size, progress=cfg.progress)
    return write_shards(shards, _items(cfg.n, cfg.seed))
