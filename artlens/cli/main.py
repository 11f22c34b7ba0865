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

from artlens.cli import extract, interpret, perturb, probe, query, shards, tables

EXIT_USAGE = 2


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {
    "shards": Command("write WebDataset shards from a folder, WikiArt or a Parquet table",
                      shards.shards_args, shards.shards_run),
    "sample": Command("generate the procedural sample corpus as shards", shards.sample_args, shards.sample_run),
    "extract": Command("embed shards with an open_clip model into a store table", extract.extract_args, extract.extract_run),
    "import": Command("import precomputed embeddings (Parquet, clip-retrieval) into a store table",
                      tables.import_args, tables.import_run),
    "sql": Command("run SQL over a store's tables (DuckDB)", query.sql_args, query.sql_run),
    "index": Command("build a FAISS index over a table and measure its recall", query.index_args, query.index_run),
    "neighbors": Command("nearest neighbours of a row, words or an image", query.neighbors_args, query.neighbors_run),
    "probe": Command("run a perception probe (or a suite) on store tables", probe.probe_args, probe.probe_run),
    "report": Command("write an HTML and Markdown report of every probe result in a store",
                      probe.report_args, probe.report_run),
    "texts": Command("embed a prompt set (YAML/CSV) with an open_clip text encoder into a store table",
                     tables.texts_args, tables.texts_run),
    "perturb": Command("embed a table's paintings under a suite of deformations (5 severities each) into a "
                       "linked table", perturb.perturb_args, perturb.perturb_run),
    "saliency": Command("heatmap of what drives an image-text score: integrated gradients (Sundararajan, Taly "
                        "& Yan 2017) or gradient-weighted attention rollout (Chefer, Gur & Wolf 2021)",
                        interpret.saliency_arguments, interpret.saliency_run),
    "guide": Command("gradient ascent on the pixels toward a text, as CLIP guidance does: score gain against "
                     "L2/SSIM change and a same-norm noise baseline", interpret.guide_arguments,
                     interpret.guide_run),
}


def build_parser() -> argparse.ArgumentParser:
    from artlens import __version__

    parser = argparse.ArgumentParser(prog="artlens", description="How do CLIP models perceive art?")
    parser.add_argument("--version", action="version", version=f"artlens {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log open_clip and library messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(sub.add_parser(name, help=command.help, description=command.help))
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean 'the input or arguments are wrong': reported in one line, exit 2."""
    from artlens.store.catalog import CatalogError
    from artlens.store.index import IndexUnavailable
    from artlens.store.neighbors import NeighborsError
    from artlens.store.layout import LayoutError
    from artlens.store.query import StoreError

    from artlens.pipeline.failures import SampleError
    from artlens.pipeline.importer import ImportSourceError
    from artlens.pipeline.models.load import ModelError
    from artlens.pipeline.shards.spec import ShardSpecError
    from artlens.pipeline.shards.sources import SourceError
    from artlens.pipeline.texts import TextsError
    from artlens.pipeline.models.weights import WeightsError
    from artlens.probes.config import ConfigError
    from artlens.probes.data import ProbeDataError
    from artlens.probes.registry import UnknownProbe

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
