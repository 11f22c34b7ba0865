"""`make bench-store`: index build time, memory, query latency and recall, and brute-force SQL, on a
synthetic clustered table. Prints a table and writes JSON.

    python -m benchmarks.store_indexes --n 1000000 --dim 768 --out bench-out/bench-store.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from artlens.store import open as open_store
from artlens.store.index import build_index, open_index
from benchmarks.synthetic_tables import clustered_unit_vectors, write_synthetic_table


def latencies_ms(fn, queries: np.ndarray) -> dict:
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - start) * 1000)
    return {"p50_ms": round(float(np.percentile(times, 50)), 3), "p99_ms": round(float(np.percentile(times, 99)), 3),
            "queries": len(times)}


def bench_kind(root: Path, table: str, kind: str, queries: np.ndarray, max_memory: str, dim: int) -> dict:
    start = time.perf_counter()
    entry = build_index(root, table, kind=kind, max_memory=max_memory, progress=True)
    total_s = time.perf_counter() - start
    index = open_index(root, table, dim)
    row = {"kind": kind, "chosen": entry.kind, "factory": entry.factory, "params": json.loads(entry.params),
           "rows": entry.rows, "build_s": entry.build_s, "build_and_measure_s": round(total_s, 1),
           "index_mib": round(entry.memory_bytes / 2**20, 1), "recall_at_10": entry.recall_at_10}
    row.update(latencies_ms(lambda q: index.search(q[None], 10), queries))
    with open_store(root) as store:
        e2e = latencies_ms(lambda q: store.neighbors(table, vector=q, k=10), queries[:100])
    row["neighbors_api_p50_ms"] = e2e["p50_ms"]
    return row


def bench_sql(root: Path, table: str, queries: np.ndarray, dim: int) -> dict:
    with open_store(root) as store:
        sql = (f"SELECT key FROM {table} ORDER BY array_cosine_similarity(embedding, ?::FLOAT[{dim}]) DESC "
               "LIMIT 10")
        return {"kind": "sql brute force", **latencies_ms(lambda q: store.sql(sql, [q.tolist()]), queries)}


def run(n: int, dim: int, out: Path, work: Path, max_memory: str, n_queries: int, sql_queries: int) -> dict:
    table = "bench"
    t0 = time.perf_counter()
    write_synthetic_table(work, table, n=n, dim=dim, part_rows=min(50_000, n), seed=0)
    write_s = time.perf_counter() - t0
    queries, _ = next(clustered_unit_vectors(n_queries, dim, seed=12345, chunk=n_queries))  # unseen points
    rows = [bench_kind(work, table, kind, queries, max_memory, dim) for kind in ("auto", "flat")]
    rows.append(bench_sql(work, table, queries[:sql_queries], dim))
    result = {"n": n, "dim": dim, "max_memory": max_memory, "write_table_s": round(write_s, 1),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "processor": platform.processor()}, "results": rows,
              "command": f"python -m benchmarks.store_indexes --n {n} --dim {dim} --max-memory {max_memory}"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return result


def print_table(result: dict) -> None:
    print(f"\n{result['n']:,} clustered unit vectors, dim {result['dim']}, budget {result['max_memory']}, "
          f"{result['machine']['cpus']} CPUs")
    head = f"{'index':<16} {'factory':<16} {'build s':>8} {'MiB':>8} {'recall@10':>9} {'p50 ms':>8} {'p99 ms':>8}"
    print(head)
    print("-" * len(head))
    for r in result["results"]:
        recall = "" if r.get("recall_at_10") is None else f"{r['recall_at_10']:.4f}"
        print(f"{r['kind'] + ('→' + r['chosen'] if r.get('chosen') not in (None, r['kind']) else ''):<16} "
              f"{r.get('factory', ''):<16} {r.get('build_s', ''):>8} {r.get('index_mib', ''):>8} {recall:>9} "
              f"{r['p50_ms']:>8} {r['p99_ms']:>8}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.store_indexes", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--max-memory", default="4G")
    p.add_argument("--queries", type=int, default=1000, help="single-vector queries timed per index")
    p.add_argument("--sql-queries", type=int, default=5)
    p.add_argument("--work", default="bench-out/store", help="scratch store (deleted afterwards)")
    p.add_argument("--out", default="bench-out/bench-store.json")
    p.add_argument("--keep", action="store_true", help="keep the scratch store")
    a = p.parse_args(argv)
    work = Path(a.work)
    try:
        result = run(a.n, a.dim, Path(a.out), work, a.max_memory, a.queries, a.sql_queries)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print_table(result)
    print(f"\nJSON: {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
