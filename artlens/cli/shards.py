"""`artlens shards` and `artlens sample`: images into WebDataset shards."""
from __future__ import annotations

import argparse


# ------------------------------------------------------------------ shards
def shards_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import option
    from artlens.pipeline.shards.config import ShardsConfig as C
    from artlens.pipeline.shards.sources import SOURCES

    p.add_argument("source", help="folder of images, WikiArt image root, Parquet file/folder, or a Hugging Face "
                                  "dataset: hf://datasets/OWNER/NAME[@REVISION] or a folder in the Hub's layout")
    p.add_argument("--out", required=True, help="output folder for 00000.tar, … and manifest.json")
    option(p, C, "format", choices=sorted(SOURCES), help="the kind of source (default: %(default)s)")
    option(p, C, "metadata", help="CSV/JSONL joined on file name or relative path (folder); split CSV (wikiart)")
    option(p, C, "metadata_encoding", help="encoding of --metadata and --class-file, e.g. latin-1, cp1252 "
                                           "(default: UTF-8, or UTF-16/UTF-32 by their byte-order mark)")
    option(p, C, "metadata_types", action="append", metavar="COL=TYPE,...",
           help="force metadata column types (str, int, float, bool), e.g. rating=float,id=str; repeatable "
                "(default: inferred from the file)")
    option(p, C, "class_file", help="wikiart: 'idx Name' lines, e.g. style_class.txt")
    option(p, C, "image_column", help="parquet, hf: column holding image bytes (default: detected)")
    option(p, C, "split", help="hf: split(s) to read, comma-separated, e.g. train (default: all)")
    option(p, C, "subset", help="hf: the dataset's subset (config) when it has several")
    option(p, C, "shard_size", type=int, help="images per shard (default %(default)s)")
    option(p, C, "max_side", type=int, help="re-encode images whose longer side exceeds N pixels")
    option(p, C, "max_pixels", type=int, help="refuse images with more pixels (decompression bombs)")
    p.add_argument("--no-progress", action="store_true")


def shards_config(a: argparse.Namespace):
    from artlens.pipeline.shards.config import ShardsConfig

    return ShardsConfig(source=a.source, out=a.out, format=a.format, metadata=a.metadata,
                        metadata_encoding=a.metadata_encoding, metadata_types=a.metadata_types,
                        split=a.split, subset=a.subset,
                        class_file=a.class_file, image_column=a.image_column, shard_size=a.shard_size,
                        max_side=a.max_side, max_pixels=a.max_pixels, progress=not a.no_progress)


def shards_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.shards.write import write_shards

    manifest = write_shards(shards_config(a))
    print(f"{manifest.samples} samples in {len(manifest.shards)} shard(s) under {a.out}; "
          f"{len(manifest.failures)} invalid (listed in manifest.json)")
    for failure in manifest.failures[:10]:
        print(f"  invalid: {failure['source_path']}: {failure['reason']}")
    return 0


# ------------------------------------------------------------------ sample
def sample_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import option
    from artlens.pipeline.demo.corpus import SampleConfig as C

    p.add_argument("--out", required=True, help="output folder for the shards and manifest.json")
    option(p, C, "n", type=int, help="number of paintings (default %(default)s)")
    option(p, C, "seed", type=int, help="seed of the generated paintings (default %(default)s)")
    option(p, C, "shard_size", type=int, help="images per shard (default %(default)s)")
    p.add_argument("--no-progress", action="store_true")


def sample_config(a: argparse.Namespace):
    from artlens.pipeline.demo.corpus import SampleConfig

    return SampleConfig(out=a.out, n=a.n, seed=a.seed, shard_size=a.shard_size, progress=not a.no_progress)


def sample_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.demo.corpus import write_sample_corpus

    manifest = write_sample_corpus(sample_config(a))
    print(f"sample corpus: {manifest.samples} paintings in {len(manifest.shards)} shard(s) under {a.out}")
    return 0
