"""`artlens sql`, `artlens index` and `artlens neighbors`: reading a store."""
from __future__ import annotations

import argparse


# ------------------------------------------------------------------ sql
def sql_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("query")
    p.add_argument("--store", required=True)
    p.add_argument("--format", default="table", choices=["table", "csv", "json", "parquet"])
    p.add_argument("--out", help="write to FILE instead of standard output")


def sql_run(a: argparse.Namespace) -> int:
    from artlens import store

    from artlens.cli.output import write_result

    with store.open(a.store) as s:
        write_result(s.sql(a.query), a.format, a.out)
    return 0


# ------------------------------------------------------------------ index
def index_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import option
    from artlens.store.index import IndexConfig as C

    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True)
    option(p, C, "kind", help="auto, flat, hnsw, ivfpq, or any FAISS factory string")
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
    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True)
    query = p.add_mutually_exclusive_group(required=True)
    query.add_argument("--key", help="a row of the table (excluded from its own results)")
    query.add_argument("--text", help="words, encoded with the table's own model")
    query.add_argument("--image", help="an image file, encoded with the table's own model")
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--where", help="one SQL expression over the table's columns, e.g. \"style = 'Baroque'\"; "
                                   "subqueries may read the store's tables, no other files")
    p.add_argument("--format", default="table", choices=["table", "csv", "json", "parquet"])
    p.add_argument("--out")
    p.add_argument("--device", default="auto")


def neighbors_run(a: argparse.Namespace) -> int:
    from artlens.api import neighbors
    from artlens.cli.output import write_result

    result = neighbors(a.store, a.table, key=a.key, text=a.text, image=a.image, k=a.k, where=a.where,
                       device=a.device)
    write_result(result, a.format, a.out)
    return 0
