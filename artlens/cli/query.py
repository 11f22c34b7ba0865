"""`artlens sql`, `artlens index` and `artlens neighbors`: reading a store."""
from __future__ import annotations

import argparse


# ------------------------------------------------------------------ sql
def sql_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import output_arguments

    p.add_argument("query", nargs="?", help="the SQL query; '-' reads it from standard input (or use --file)")
    p.add_argument("-f", "--file", help="read the query from this file ('-': standard input)")
    p.add_argument("--store", required=True, help="the store folder (or URL) whose tables the query reads")
    output_arguments(p)


def sql_text(a: argparse.Namespace, stdin=None) -> str:
    """The query: the positional, or `--file PATH`, or standard input for `-` (either way); exactly one."""
    import sys

    from artlens.errors import UserError

    if (a.query is None) == (a.file is None):
        raise UserError("give the query as an argument or as `file` (or '-' for standard input), not both"
                        if a.query is not None else "no query: give one as an argument, or `file` PATH, or '-' "
                        "to read standard input", argument="file")
    source = a.file if a.file is not None else a.query
    if source == "-":
        text = (stdin or sys.stdin).read()
    elif a.file is not None:
        try:
            text = open(source, encoding="utf-8").read()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read the query of `file` {source!r}: {exc.strerror or exc}",
                            argument="file") from None
    else:
        text = source
    if not text.strip():
        raise UserError(f"the query {'of `file` ' + repr(source) + ' ' if a.file not in (None, '-') else ''}is empty",
                        argument="file" if a.file is not None else None)
    return text


def sql_run(a: argparse.Namespace) -> int:
    from artlens import store

    from artlens.cli.output import write_result

    query = sql_text(a)
    with store.open(a.store) as s:
        write_result(s.sql(query), a.format, a.out, a.max_rows)
    return 0


# ------------------------------------------------------------------ index
def index_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import option
    from artlens.store.index import IndexConfig as C

    p.add_argument("--store", required=True, help="the store folder (or URL)")
    p.add_argument("--table", required=True, help="the table of embeddings to index")
    option(p, C, "kind", help="auto, flat, hnsw, ivfpq, ivfsq, or any FAISS factory string")
    option(p, C, "max_memory", help="memory budget for the index (auto chooses by it)")
    option(p, C, "recall_queries", type=int, help="queries for the recall measurement")
    option(p, C, "target_recall", type=float, help="10-recall@10 the search is tuned to")
    p.add_argument("--no-progress", action="store_true")


def index_config(a: argparse.Namespace):
    from artlens.store.index import IndexConfig

    return IndexConfig(store=a.store, table=a.table, kind=a.kind, max_memory=a.max_memory,
                       recall_queries=a.recall_queries, target_recall=a.target_recall, progress=not a.no_progress)


def index_run(a: argparse.Namespace) -> int:
    from artlens.store.index import build_index

    e = build_index(index_config(a))
    recall = "n/a" if e.recall_at_10 is None else f"{e.recall_at_10:.4f}"
    print(f"index of {a.table}: {e.kind} ({e.factory}), {e.rows:,} rows, built in {e.build_s:.1f} s, "
          f"{e.memory_bytes / 2**20:.1f} MiB, search {e.params}")
    print(f"10-recall@10 against exact search on {e.recall_queries} sampled queries: {recall}")
    return 0


# ------------------------------------------------------------------ neighbors
def neighbors_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import output_arguments

    p.add_argument("--store", required=True, help="the store folder (or URL)")
    p.add_argument("--table", required=True, help="the table of embeddings to search")
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--key", help="a row of the table (excluded from its own results)")
    query.add_argument("--text", help="words, encoded with the table's own model")
    query.add_argument("--image", help="an image file, encoded with the table's own model")
    p.add_argument("-k", type=int, default=10, help="neighbours to return (default: 10)")
    p.add_argument("--where", help="one SQL expression over the table's columns, e.g. \"style = 'Baroque'\"; "
                                   "subqueries may read the store's tables, no other files")
    output_arguments(p)
    p.add_argument("--device", default="auto", help="device of the text or image encoder: auto, cpu, cuda or cuda:N")
    p.add_argument("--sheet", metavar="FILE.png", help="also write a contact sheet PNG: the query (a --key or "
                                                       "--image) and its neighbours, labelled with key and score")


def neighbors_run(a: argparse.Namespace) -> int:
    from artlens.api import neighbors
    from artlens.cli.output import write_result

    result = neighbors(a.store, a.table, key=a.key, text=a.text, image=a.image, k=a.k, where=a.where,
                       device=a.device)
    write_result(result, a.format, a.out, a.max_rows)
    if getattr(a, "sheet", None):
        from artlens import store
        from artlens.pipeline.sheets import neighbor_sheet

        with store.open(a.store) as s:
            neighbor_sheet(s, a.table, result, a.sheet, query_key=a.key, query_image=a.image)
    return 0
