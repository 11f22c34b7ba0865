"""`artlens shards` and `artlens sample`: images into WebDataset shards."""
from __future__ import annotations

import argparse


# ------------------------------------------------------------------ shards
def shards_args(p: argparse.ArgumentParser) -> None:
    from artlens.pipeline.imaging.decode import DEFAULT_MAX_PIXELS
    from artlens.pipeline.shards.sources import SOURCES

    p.add_argument("source", help="folder of images, WikiArt image root, or Parquet file/folder")
    p.add_argument("--out", required=True, help="output folder for 00000.tar, … and manifest.json")
    p.add_argument("--format", default="folder", choices=sorted(SOURCES))
    p.add_argument("--metadata", help="CSV/JSONL joined on file name or relative path (folder); "
                                      "split CSV (wikiart)")
    p.add_argument("--class-file", help="wikiart: 'idx Name' lines, e.g. style_class.txt")
    p.add_argument("--image-column", help="parquet: column holding image bytes (default: detected)")
    p.add_argument("--shard-size", type=int, default=1000, help="images per shard (default 1000)")
    p.add_argument("--max-side", type=int, help="re-encode images whose longer side exceeds N pixels")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    p.add_argument("--no-progress", action="store_true")


def shards_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.shards.config import ShardsConfig
    from artlens.pipeline.shards.write import write_shards

    cfg = ShardsConfig(source=a.source, out=a.out, format=a.format, metadata=a.metadata,
                       class_file=a.class_file, image_column=a.image_column, shard_size=a.shard_size,
                       max_side=a.max_side, max_pixels=a.max_pixels, progress=not a.no_progress)
    manifest = write_shards(cfg)
    print(f"{manifest.samples} samples in {len(manifest.shards)} shard(s) under {a.out}; "
          f"{len(manifest.failures)} invalid (listed in manifest.json)")
    for failure in manifest.failures[:10]:
        print(f"  invalid: {failure['source_path']}: {failure['reason']}")
    return 0


# ------------------------------------------------------------------ sample
def sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=240, help="number of paintings (default 240)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard-size", type=int, default=64)
    p.add_argument("--no-progress", action="store_true")


def sample_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.demo.corpus import write_sample_corpus

    manifest = write_sample_corpus(a.out, n=a.n, seed=a.seed, shard_size=a.shard_size, progress=not a.no_progress)
    print(f"sample corpus: {manifest.samples} paintings in {len(manifest.shards)} shard(s) under {a.out}")
    return 0
