"""`artlens map --store DIR --table T [--method pca|umap] [--seed 0]`: compute a table's 2-D map (PCA or UMAP
of its embeddings) and keep it in the store, where the explorer and the report read it; a current map is
reused, `--recompute` makes it again."""
from __future__ import annotations

import argparse
import time


def map_args(p: argparse.ArgumentParser) -> None:
    import inspect

    from artlens.probes.maps import METHODS, project

    defaults = {name: param.default for name, param in inspect.signature(project).parameters.items()}
    p.add_argument("--store", required=True, help="the store folder (or URL) whose table is mapped")
    p.add_argument("--table", required=True, help="the table of embeddings to map")
    p.add_argument("--method", default=defaults["method"], choices=sorted(METHODS),
                   help="pca (seconds; the first two principal components) or umap (slower, keeps local "
                        f"neighbourhoods) (default: {defaults['method']})")
    p.add_argument("--seed", type=int, default=defaults["seed"],
                   help=f"seed of the projection (default: {defaults['seed']})")
    p.add_argument("--recompute", action="store_true",
                   help="make the map again even when the store holds a current one")


def map_run(a: argparse.Namespace) -> int:
    from artlens import store
    from artlens.probes.maps import map_for, project

    started = time.perf_counter()
    with store.open(a.store) as s:
        points = project(s, a.table, a.method, seed=a.seed) if a.recompute else map_for(s, a.table, a.method,
                                                                                          seed=a.seed)
        where = s.layout.map_path(a.table, a.method)
    print(f"map: {a.method} of {a.table}: {points.num_rows:,} rows in {time.perf_counter() - started:.2f} s "
          f"({where})")
    return 0
