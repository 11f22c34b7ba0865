"""`artlens dedup`: near-duplicate groups of a table's rows, written as a key table the probes split by."""
from __future__ import annotations

import argparse


def dedup_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import option
    from artlens.pipeline.dedup import METHODS, DedupConfig as C

    p.add_argument("--store", required=True, help="the store folder (or URL)")
    p.add_argument("--table", required=True, help="table of embeddings whose rows are grouped (writes TABLE_dups)")
    option(p, C, "threshold", type=float,
           help="cosine similarity in (0, 1] at which two rows are near-duplicates (default %(default)s); groups "
                "are single-linkage chains (a~b and b~c join a and c even when a and c are less similar)")
    option(p, C, "method", choices=METHODS,
           help="auto (default): exact search up to --exact-below rows, else the table's FAISS index "
                "(artlens index; range search, or --neighbors nearest where the index has none); exact; index")
    option(p, C, "exact_below", type=int, help="auto: tables of at most this many rows are searched exactly "
                                               "(default %(default)s)")
    option(p, C, "neighbors", type=int, help="an index without range search: nearest rows checked per row "
                                             "(default %(default)s)")
    p.add_argument("--format", default="text", choices=["text", "json"],
                   help="text (default) or one JSON object of the counts")
    p.add_argument("--no-progress", action="store_true")


def dedup_config(a: argparse.Namespace):
    from artlens.pipeline.dedup import DedupConfig

    return DedupConfig(store=a.store, table=a.table, threshold=a.threshold, method=a.method,
                       exact_below=a.exact_below, neighbors=a.neighbors, progress=not a.no_progress)


def dedup_run(a: argparse.Namespace) -> int:
    import json

    from artlens.pipeline.dedup import run_dedup

    summary = run_dedup(dedup_config(a))
    if a.format == "json":
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
    else:
        for line in summary.lines():
            print(line)
    return 0
