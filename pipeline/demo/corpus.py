"""The project's own demo corpus: procedurally drawn paintings (pipeline.sample) written as shards."""
from __future__ import annotations

import io

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


def write_sample_corpus(out: str, n: int = 240, seed: int = 0, shard_size: int = 64,
                        progress: bool = True) -> ShardsManifest:
    cfg = ShardsConfig(source=f"artlens-sample(n={n}, seed={seed})", out=out, format="sample",
                       shard_size=shard_size, progress=progress)
    return write_shards(cfg, _items(n, seed))
