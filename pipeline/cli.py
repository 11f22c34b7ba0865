"""`artlens` command line: a thin layer over the Python API. Subcommands are a registry, not a chain.

Exit codes: 0 success; 3 extraction finished but some samples failed (see the `failures` view);
2 bad arguments or input the command refuses; 1 any other error.
"""
from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from typing import Callable

EXIT_USAGE = 2


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# ------------------------------------------------------------------ shards
def _shards_args(p: argparse.ArgumentParser) -> None:
    from .decode import DEFAULT_MAX_PIXELS
    from .sources import SOURCES

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


def _shards_run(a: argparse.Namespace) -> int:
    from .config import ShardsConfig
    from .shards import write_shards

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
def _sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=240, help="number of paintings (default 240)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--shard-size", type=int, default=64)
    p.add_argument("--no-progress", action="store_true")


def _sample_run(a: argparse.Namespace) -> int:
    from .samplecorpus import write_sample_corpus

    manifest = write_sample_corpus(a.out, n=a.n, seed=a.seed, shard_size=a.shard_size, progress=not a.no_progress)
    print(f"sample corpus: {manifest.samples} paintings in {len(manifest.shards)} shard(s) under {a.out}")
    return 0


# ------------------------------------------------------------------ extract
def _extract_args(p: argparse.ArgumentParser) -> None:
    from .config import DECODE_NAMES, JPEG_DECODER_NAMES, PRECISION_NAMES
    from .decode import DEFAULT_MAX_PIXELS

    p.add_argument("--shards", required=True, help="folder of .tar, brace pattern, glob, or list file")
    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True, help="table to write (with --models: the prefix of each table)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", default="ViT-B-32", help="open_clip model name or JSON model config path")
    which.add_argument("--models", help="several models over one decode, MODEL:PRETRAINED,...; one table "
                                        "each, named TABLE_<model>_<weights>")
    p.add_argument("--pretrained", default="openai", help="open_clip tag, checkpoint path, or 'random'")
    p.add_argument("--seed", type=int, default=0, help="seed for --pretrained random")
    p.add_argument("--batch-size", type=_auto_int, default=None, help="images per batch (default auto: 512 on "
                                                                     "CUDA, 64 on CPU)")
    p.add_argument("--precision", default="auto", choices=("auto",) + PRECISION_NAMES,
                   help="auto: fp16 on CUDA, fp32 on CPU")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--decode", default="auto", choices=DECODE_NAMES,
                   help="auto: JPEGs decoded and resized on the GPU (nvJPEG) when the model runs on CUDA; "
                        "other images always by Pillow on the CPU")
    p.add_argument("--decode-threads", type=int, default=2, help="threads feeding nvJPEG (with GPU decoding)")
    p.add_argument("--jpeg-decoder", default="auto", choices=JPEG_DECODER_NAMES,
                   help="GPU JPEG decoder: auto = torchvision's nvJPEG (fastest here); nvimgcodec "
                        "(pip install 'artlens[gpu-cu13]' or gpu-cu12) gives pixels within one level of Pillow's")
    p.add_argument("--devices", help="one process per device: 'all' (every CUDA GPU), '0,1' (CUDA ids), or "
                                     "names such as cpu,cpu; shard i goes to device i mod N")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="ray: Ray Data (CPU decode tasks, model actor pool, commits by this process)")
    p.add_argument("--address", help="with --engine ray: the cluster to join (default: start a local Ray)")
    p.add_argument("--actors", type=int, help="with --engine ray: model actors (default: one per GPU, or 1)")
    p.add_argument("--retries", type=int, default=1, help="with --devices: rounds of retrying the shards of a "
                                                          "failed process (default 1)")
    p.add_argument("--workers", type=_auto_int, default=None,
                   help="decode worker processes (0: in-process; default auto: CPU cores - 1, or - 2 with "
                        "GPU decoding)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="refuse images with more pixels (decompression bombs)")
    p.add_argument("--cache-dir", help="open_clip/hub cache directory for weights")
    p.add_argument("--overwrite", action="store_true", help="replace a table made with other settings")
    p.add_argument("--strict", action="store_true", help="stop at the first failed sample")
    p.add_argument("--no-progress", action="store_true")


def _auto_int(text: str) -> int | None:
    return None if text == "auto" else int(text)


def _extract_run(a: argparse.Namespace) -> int:
    from .config import ExtractConfig, ModelSpec, parse_models
    from .extract import run_extract

    spec = ModelSpec(model=a.model, pretrained=a.pretrained, precision=a.precision, device=a.device,
                     seed=a.seed, cache_dir=a.cache_dir)
    cfg = ExtractConfig(shards=a.shards, store=a.store, table=a.table, model=spec,
                        models=parse_models(a.models, spec) if a.models else (), batch_size=a.batch_size,
                        workers=a.workers, decode=a.decode, decode_threads=a.decode_threads,
                        jpeg_decoder=a.jpeg_decoder, max_pixels=a.max_pixels, overwrite=a.overwrite,
                        strict=a.strict, progress=not a.no_progress)
    if a.engine == "ray":
        if a.devices:
            raise ValueError("--devices is for the local engine; with --engine ray, Ray places the actors")
        from .rayengine import run_with_ray
        summary = run_with_ray(cfg, address=a.address, actors=a.actors)
    elif a.devices:
        from .devices import parse_devices, run_on_devices
        summary = run_on_devices(cfg, parse_devices(a.devices), retries=a.retries)
    else:
        summary = run_extract(cfg)
    for line in summary.lines():
        print(line)
    return summary.exit_code


# ------------------------------------------------------------------ import
def _import_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", help="Parquet file or folder, or clip-retrieval output (img_emb/ + metadata/)")
    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--embedding-column", required=True,
                   help="column of vectors (e.g. 'ViT-L/14@336px'); clip-retrieval: the folder, e.g. img_emb")
    p.add_argument("--key-column", help="column of unique keys (default: 'key'; clip-retrieval: "
                                        "'key' or 'image_path')")
    p.add_argument("--model-name", help="model recorded in the catalog (default: the embedding column name)")
    p.add_argument("--overwrite", action="store_true", help="replace a table made with other settings")


def _import_run(a: argparse.Namespace) -> int:
    from .importer import ImportConfig, run_import

    cfg = ImportConfig(source=a.source, store=a.store, table=a.table, embedding_column=a.embedding_column,
                       key_column=a.key_column, model_name=a.model_name, overwrite=a.overwrite)
    summary = run_import(cfg)
    for line in summary.lines():
        print(line)
    return summary.exit_code


# ------------------------------------------------------------------ texts
def _texts_args(p: argparse.ArgumentParser) -> None:
    from .config import PRECISION_NAMES

    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True, help="text table to write (kind 'text')")
    p.add_argument("--prompts", required=True,
                   help="prompt set: YAML or CSV file, or the name of a bundled set (sample-style)")
    p.add_argument("--model", default="ViT-B-32", help="open_clip model name or JSON model config path")
    p.add_argument("--pretrained", default="openai", help="open_clip tag, checkpoint path, or 'random'")
    p.add_argument("--for-table", help="image table the prompts are for: refuse unless the same model, "
                                       "weights and dim made it")
    p.add_argument("--seed", type=int, default=0, help="seed for --pretrained random")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--precision", default="fp32", choices=PRECISION_NAMES)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--cache-dir", help="open_clip/hub cache directory for weights")
    p.add_argument("--overwrite", action="store_true", help="replace the whole table (every prompts file in it)")


def _texts_run(a: argparse.Namespace) -> int:
    from .config import ModelSpec
    from .texts import TextsConfig, embed_prompts

    spec = ModelSpec(model=a.model, pretrained=a.pretrained, precision=a.precision, device=a.device,
                     seed=a.seed, cache_dir=a.cache_dir)
    cfg = TextsConfig(prompts=a.prompts, store=a.store, table=a.table, model=spec, for_table=a.for_table,
                      batch_size=a.batch_size, overwrite=a.overwrite)
    for line in embed_prompts(cfg).lines():
        print(line)
    return 0


# ------------------------------------------------------------------ sql
def _sql_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("query")
    p.add_argument("--store", required=True)
    p.add_argument("--format", default="table", choices=["table", "csv", "json", "parquet"])
    p.add_argument("--out", help="write to FILE instead of standard output")


def _sql_run(a: argparse.Namespace) -> int:
    import store

    from .output import write_result

    with store.open(a.store) as s:
        write_result(s.sql(a.query), a.format, a.out)
    return 0


# ------------------------------------------------------------------ index
def _index_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--kind", default="auto", help="auto, flat, hnsw, ivfpq, or any FAISS factory string")
    p.add_argument("--max-memory", default="4G", help="memory budget for the index (auto chooses by it)")
    p.add_argument("--recall-queries", type=int, default=1000, help="queries for the recall measurement")
    p.add_argument("--target-recall", type=float, default=0.95, help="10-recall@10 the search is tuned to")
    p.add_argument("--no-progress", action="store_true")


def _index_run(a: argparse.Namespace) -> int:
    from store.index import build_index

    e = build_index(a.store, a.table, kind=a.kind, max_memory=a.max_memory, recall_queries=a.recall_queries,
                    target_recall=a.target_recall, progress=not a.no_progress)
    recall = "n/a" if e.recall_at_10 is None else f"{e.recall_at_10:.4f}"
    print(f"index of {a.table}: {e.kind} ({e.factory}), {e.rows:,} rows, built in {e.build_s:.1f} s, "
          f"{e.memory_bytes / 2**20:.1f} MiB, search {e.params}")
    print(f"10-recall@10 against exact search on {e.recall_queries} sampled queries: {recall}")
    return 0


# ------------------------------------------------------------------ neighbors
def _neighbors_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True)
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--key", help="a row of the table (excluded from its own results)")
    query.add_argument("--text", help="words, encoded with the table's own model")
    query.add_argument("--image", help="an image file, encoded with the table's own model")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--where", help="SQL filter on the table's columns, e.g. \"style = 'Baroque'\"")
    p.add_argument("--format", default="table", choices=["table", "csv", "json", "parquet"])
    p.add_argument("--out")
    p.add_argument("--device", default="auto")


def _query_vector(a: argparse.Namespace, entry):
    from .model import load_for_table

    loaded = load_for_table(entry, a.device)
    if a.text is not None:
        from .texts import encode_texts

        return encode_texts(loaded, [a.text])[0]
    from pathlib import Path

    from .decode import decode_image

    image = decode_image(Path(a.image).read_bytes())
    return loaded.embed(loaded.preprocess(image)[None])[0]


def _neighbors_run(a: argparse.Namespace) -> int:
    import store

    from .output import write_result

    if a.k < 1:
        raise ValueError("-k must be at least 1")
    with store.open(a.store) as s:
        if a.key is not None:
            result = s.neighbors(a.table, key=a.key, k=a.k, where=a.where)
        else:
            result = s.neighbors(a.table, vector=_query_vector(a, s.entry(a.table)), k=a.k, where=a.where)
        write_result(result, a.format, a.out)
    return 0


# ------------------------------------------------------------------ probe
def _probe_args(p: argparse.ArgumentParser) -> None:
    from probes.cli import add_arguments

    add_arguments(p)


def _probe_run(a: argparse.Namespace) -> int:
    from probes.cli import run

    return run(a)


# ------------------------------------------------------------------ report
def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True)
    p.add_argument("--out", required=True, help="folder for index.html, report.md, results.json and figures/")
    p.add_argument("--title", help="report title (default: 'artlens report: <store folder>')")


def _report_run(a: argparse.Namespace) -> int:
    from probes.report import write_report

    index = write_report(a.store, a.out, title=a.title)
    print(f"report: {index} and {index.with_name('report.md')}")
    return 0


# ------------------------------------------------------------------ perturb
def _perturb_args(p: argparse.ArgumentParser) -> None:
    from .decode import DEFAULT_MAX_PIXELS

    p.add_argument("--shards", required=True, help="the shards the clean table was extracted from (any SPEC)")
    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True, help="the clean image table (its model and weights are used)")
    p.add_argument("--suite", default="default", help="bundled deformation suite (default) or a YAML path")
    p.add_argument("--out-table", help="deformation table to write (default: TABLE_deformed)")
    p.add_argument("--deformations", help="comma-separated subset of the suite, e.g. blur,noise")
    p.add_argument("--save-examples", type=int, default=0, metavar="N",
                   help="write a contact sheet PNG for each of the first N paintings")
    p.add_argument("--examples-dir", help="folder for the contact sheets (default: STORE/results/examples/OUT)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--workers", type=int, default=2, help="deformation worker processes (0: in-process)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    p.add_argument("--cache-dir", help="open_clip/hub cache directory for weights")
    p.add_argument("--overwrite", action="store_true", help="replace a deformation table made otherwise")
    p.add_argument("--no-progress", action="store_true")


def _perturb_run(a: argparse.Namespace) -> int:
    from .perturb import PerturbConfig, run_perturb

    subset = tuple(d.strip() for d in (a.deformations or "").split(",") if d.strip())
    cfg = PerturbConfig(shards=a.shards, store=a.store, table=a.table, suite=a.suite, out_table=a.out_table,
                        deformations=subset, save_examples=a.save_examples, examples_dir=a.examples_dir,
                        batch_size=a.batch_size, device=a.device, workers=a.workers, max_pixels=a.max_pixels,
                        cache_dir=a.cache_dir, overwrite=a.overwrite, progress=not a.no_progress)
    summary = run_perturb(cfg)
    for line in summary.lines():
        print(line)
    return summary.exit_code


# ------------------------------------------------------------------ saliency, guide
def _guidance(name: str) -> Callable:
    """A function of pipeline/guidance/cli.py, imported when first called."""
    def call(arg):
        from .guidance import cli

        return getattr(cli, name)(arg)
    return call


COMMANDS: dict[str, Command] = {
    "shards": Command("write WebDataset shards from a folder, WikiArt or a Parquet table",
                      _shards_args, _shards_run),
    "sample": Command("generate the procedural sample corpus as shards", _sample_args, _sample_run),
    "extract": Command("embed shards with an open_clip model into a store table", _extract_args, _extract_run),
    "import": Command("import precomputed embeddings (Parquet, clip-retrieval) into a store table",
                      _import_args, _import_run),
    "sql": Command("run SQL over a store's tables (DuckDB)", _sql_args, _sql_run),
    "index": Command("build a FAISS index over a table and measure its recall", _index_args, _index_run),
    "neighbors": Command("nearest neighbours of a row, words or an image", _neighbors_args, _neighbors_run),
    "probe": Command("run a perception probe (or a suite) on store tables", _probe_args, _probe_run),
    "report": Command("write an HTML and Markdown report of every probe result in a store",
                      _report_args, _report_run),
    "texts": Command("embed a prompt set (YAML/CSV) with an open_clip text encoder into a store table",
                     _texts_args, _texts_run),
    "perturb": Command("embed a table's paintings under a suite of deformations (5 severities each) into a "
                       "linked table", _perturb_args, _perturb_run),
    "saliency": Command("heatmap of what drives an image-text score: integrated gradients (Sundararajan, Taly "
                        "& Yan 2017) or gradient-weighted attention rollout (Chefer, Gur & Wolf 2021)",
                        _guidance("saliency_arguments"), _guidance("saliency_run")),
    "guide": Command("gradient ascent on the pixels toward a text, as CLIP guidance does: score gain against "
                     "L2/SSIM change and a same-norm noise baseline", _guidance("guide_arguments"),
                     _guidance("guide_run")),
}


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="artlens", description="How do CLIP models perceive art?")
    parser.add_argument("--version", action="version", version=f"artlens {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log open_clip and library messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'the input or arguments are wrong': reported in one line, exit 2."""
    from store.catalog import CatalogError
    from store.index import IndexUnavailable
    from store.neighbors import NeighborsError
    from store.layout import LayoutError
    from store.query import StoreError

    from .failures import SampleError
    from .importer import ImportSourceError
    from .model import ModelError
    from .shardspec import ShardSpecError
    from .sources import SourceError
    from .texts import TextsError
    from .weights import WeightsError
    from probes.config import ConfigError
    from probes.data import ProbeDataError
    from probes.registry import UnknownProbe

    return (ConfigError, ProbeDataError, UnknownProbe, IndexUnavailable, NeighborsError, CatalogError, LayoutError, StoreError, SampleError, ModelError, ShardSpecError, SourceError,
            WeightsError, ImportSourceError, TextsError, FileExistsError, FileNotFoundError, ValueError)


def main(argv: list[str] | None = None) -> int:
    args, extra = build_parser().parse_known_args(argv)
    if extra and args.command != "probe":  # only probe options are generated per probe
        build_parser().parse_args(argv)  # reports the unknown arguments and exits 2
    args._extra = extra
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command].run(args)
    except _user_errors() as exc:
        print(f"artlens {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"artlens {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
