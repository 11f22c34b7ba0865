"""`artlens` command line: a thin layer over the Python API. Subcommands are a registry, not a chain.

Exit codes: 0 success; 3 extraction finished but some samples failed, or the table still holds failures for
the shards the run covered (see the `failures` view); 2 bad arguments or input the command refuses (a
`UserError`: one line, its arguments named by their flags); 4 no space left on the device (or the disk quota
is exhausted): one line naming the file, wherever it was raised (the commit thread, DuckDB, pyarrow), and the
same command resumes once space is freed; 1 any other error, a bug or a broken environment (one line; the
traceback with -v); 130 interrupted; 141 standard output was closed early (`artlens sql ... | head`: quietly, as
a command killed by SIGPIPE).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
import warnings
from dataclasses import dataclass
from typing import Callable

from artlens.cli import dedup, extract, interpret, perturb, probe, query, repair, shards, tables
from artlens.cli.args import flag, progress_flags, show_progress

EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_NO_SPACE = 4
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a command whose reader went away


def _never(args: argparse.Namespace) -> bool:
    return False


@dataclass(frozen=True)
class Command:
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    #: whether the process may end the moment `run` returns (`os._exit` after flushing: no interpreter
    #: teardown), for a command whose every file is closed by then; only when the process is the command
    ends_at_once: Callable[[argparse.Namespace], bool] = _never


#: set by `_main` when the command that ran may end the process at once (`Command.ends_at_once`)
_END_AT_ONCE = False


def _late(module: str, name: str) -> Callable:
    """A command function of a module imported when it is called (`artlens --help` lists the command even
    before its module loads)."""
    def call(*args):
        return getattr(importlib.import_module(f"artlens.cli.{module}"), name)(*args)

    call.__name__ = name
    return call


COMMANDS: dict[str, Command] = {
    "shards": Command("write WebDataset shards from a folder, WikiArt or a Parquet table",
                      shards.shards_args, shards.shards_run),
    "sample": Command("generate the procedural sample corpus as shards", shards.sample_args, shards.sample_run),
    "extract": Command("embed shards with an open_clip model into a store table", extract.extract_args, extract.extract_run,
                       extract.ends_at_once),
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
    "dedup": Command("find near-duplicate groups of a table's rows (cosine range search, single linkage) and "
                     "write them as a linked table whose dup_group probes can split by", dedup.dedup_args,
                     dedup.dedup_run),
    "saliency": Command("heatmap of what drives an image-text score: integrated gradients (Sundararajan, Taly "
                        "& Yan 2017) or gradient-weighted attention rollout (Chefer, Gur & Wolf 2021)",
                        interpret.saliency_arguments, interpret.saliency_run),
    "guide": Command("gradient ascent on the pixels toward a text, as CLIP guidance does: score gain against "
                     "L2/SSIM change and a same-norm noise baseline", interpret.guide_arguments,
                     interpret.guide_run),
    "repair": Command("rebuild a store's catalog from its parts, move unreadable parts aside, recount rows",
                      repair.repair_args, repair.repair_run),
    "tables": Command("list a store's tables with rows, model, kind, dim and parent", tables.tables_args,
                      tables.tables_run),
    "models": Command("list open_clip models and pretrained tags, and whether their weights are in the local "
                      "cache",
                      _late("models", "models_args"), _late("models", "models_run")),
    "results": Command("one table of every probe result in a store (metric, value, interval, baseline, n, model)",
                       _late("results", "results_args"), _late("results", "results_run")),
    "map": Command("compute a table's 2-D map (PCA or UMAP of its embeddings) and keep it in the store",
                   _late("maps", "map_args"), _late("maps", "map_run")),
    "serve": Command("a web explorer over a store (map, search, paintings, probe results) and its JSON API, on "
                     "127.0.0.1 by default", _late("serve", "serve_args"), _late("serve", "serve_run")),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; given the command line, only the chosen command's arguments are declared,
    since their defaults are read from its config (whose module may import NumPy, DuckDB or torch)."""
    from artlens import __version__

    parser = argparse.ArgumentParser(prog="artlens", description="How do CLIP models perceive art?")
    parser.add_argument("--version", action="version", version=f"artlens {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log open_clip and library messages")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = None if argv is None else next((token for token in argv if not token.startswith("-")), "")
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        if chosen in (None, name):
            command.add_arguments(p)
            if "--no-progress" in p._option_string_actions or "--progress" in p._option_string_actions:
                progress_flags(p)  # --progress beside every --no-progress, both with their help
    return parser


def _internal_error(command: str, exc: Exception, verbose: bool) -> int:
    """Not a `UserError`: a bug or a broken environment. One line, and the traceback under -v."""
    if verbose:
        traceback.print_exception(exc, file=sys.stderr)
    hint = "" if verbose else " (run with -v for the traceback)"
    text = " ".join(str(exc).split())
    what = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    print(f"artlens {command}: internal error: {what}{hint}", file=sys.stderr)
    return EXIT_INTERNAL


def _no_space(args: argparse.Namespace, exc: Exception, path: str | None) -> int:
    """A full device or quota: not a bug, and nothing committed is lost. One line, the traceback under -v."""
    if args.verbose:
        traceback.print_exception(exc, file=sys.stderr)
    where = path or getattr(args, "out", None) or getattr(args, "store", None) or "its output"
    print(f"artlens {args.command}: error: no space left on the device writing {where}: free space and re-run "
          "the same command; committed shards are kept", file=sys.stderr)
    return EXIT_NO_SPACE


def _show_artlens_warnings(command: str) -> None:
    """Print every ArtlensWarning (each time, not once per place) as `artlens CMD: warning: ...` on stderr."""
    from artlens.errors import ArtlensWarning

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, ArtlensWarning):
            return shown(message, category, filename, lineno, file, line)
        print(f"artlens {command}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    warnings.simplefilter("always", ArtlensWarning)
    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    """The `artlens` command; a reader of standard output that goes away (`| head`) ends it quietly."""
    if argv is None:  # the command line itself: this process runs one command (artlens/startup.py)
        from artlens import startup

        startup.COMMAND_PROCESS = True
    try:
        code = _main(argv)
        sys.stdout.flush()  # here, not at exit, so a closed pipe is caught here
        if argv is None and _END_AT_ONCE:
            _end_now(code)
        return code
    except BrokenPipeError:
        try:  # Python flushes stdout again at exit: point it at devnull so that finds nothing to complain of
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return EXIT_BROKEN_PIPE


def _end_now(code: int) -> None:
    """End the process with `code` without Python's teardown (CUDA's, the modules'), which is time the user
    waits for after the work is done; log handlers and standard streams are flushed first."""
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)


def _main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)  # probe options too: generated per probe (cli/probe.py)
    args._extra = []
    if hasattr(args, "no_progress"):  # bars only on a terminal, unless --progress / --no-progress says
        args.no_progress = not show_progress(args)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.ERROR,
                        format="%(levelname)s %(name)s: %(message)s")
    from artlens.errors import UserError, disk_full  # after parsing: `artlens --help` stays free of DuckDB

    try:
        with warnings.catch_warnings():  # artlens's warnings: one line each, as its errors
            _show_artlens_warnings(args.command)
            code = COMMANDS[args.command].run(args)
        global _END_AT_ONCE
        _END_AT_ONCE = COMMANDS[args.command].ends_at_once(args)
        return code
    except UserError as exc:
        full = disk_full(exc)  # e.g. a catalog that could not be opened because the disk is full
        if full is not None:
            return _no_space(args, exc, full.path)
        print(f"artlens {args.command}: error: {exc.render(flag)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"artlens {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise  # standard output closed early: `main` ends quietly
    except Exception as exc:  # noqa: BLE001 - every other error is reported, not raised at the user
        full = disk_full(exc)
        if full is not None:
            return _no_space(args, exc, full.path)
        return _internal_error(args.command, exc, args.verbose)


if __name__ == "__main__":
    sys.exit(main())
