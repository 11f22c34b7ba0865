"""A table's 2-D map: its embeddings projected to (x, y) by PCA or UMAP, computed once and kept in the store.

    points = map_for(s, "sample")               # the stored PCA map, or computed and stored now
    points = project(s, "sample", "umap", seed=0)

The embeddings are read through the store's query API (probes/data.py `load_rows`, in key order) and the map
is kept by `Store.save_map` (store/maps.py: one file per table and method, with the fingerprint of the parts
it was made from, so a table that changed is projected again). The store runs no projection itself.

* `pca`: the first two principal components of the centred float32 embeddings, exactly (the covariance's top
  eigenvectors, signs fixed): 0.8 s of the 1.3 s of `project` for 100,000 x 512 on this 2-core machine.
* `umap`: umap-learn (n_neighbors 15, cosine, seeded). A table of more than UMAP_FIT_ROWS rows is fit on a
  seeded sample of that many rows and the others are placed by `transform`; a seeded UMAP runs single-
  threaded, so the same seed gives the same map.

A `where` filter maps the rows it keeps; such a map is returned but not stored (the store keeps one map of
the whole table per method).
"""
from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import pyarrow as pa
from threadpoolctl import threadpool_limits

from artlens.errors import UserError
from artlens.probes.data import load_rows

#: UMAP is fit on at most this many rows (a seeded sample); the other rows are placed by transform.
UMAP_FIT_ROWS = 20_000
UMAP_NEIGHBORS = 15


class MapInputError(UserError):
    """A table that cannot be mapped (no embeddings, too few rows, an unknown method)."""


def _pca(X: np.ndarray, seed: int) -> np.ndarray:
    """The scores on the first two principal components, exactly: the top eigenvectors of the d x d covariance
    (one pass of BLAS over the rows, then a small eigendecomposition; faster than a randomized SVD of the rows
    for n >> d), each axis's sign fixed so its largest loading is positive. `seed` is unused (deterministic)."""
    Xc = X - X.mean(axis=0, dtype=np.float64).astype(np.float32)
    if not np.any(Xc):
        return np.zeros((len(X), 2), dtype=np.float32)
    if Xc.shape[1] < 2:  # one dimension: it is the first component
        return np.column_stack([Xc[:, 0], np.zeros(len(Xc), np.float32)])
    cov = (Xc.T @ Xc).astype(np.float64)
    _, vectors = np.linalg.eigh(cov)
    top = vectors[:, ::-1][:, :2]
    top *= np.where(top[np.abs(top).argmax(axis=0), [0, 1]] < 0, -1.0, 1.0)
    return (Xc @ top.astype(np.float32)).astype(np.float32)


def _umap(X: np.ndarray, seed: int) -> np.ndarray:
    with warnings.catch_warnings():  # umap warns that a seed turns parallelism off: that is the point
        warnings.simplefilter("ignore", UserWarning)
        from umap import UMAP

        reducer = UMAP(n_components=2, n_neighbors=min(UMAP_NEIGHBORS, len(X) - 1), metric="cosine",
                       random_state=seed)
        if len(X) <= UMAP_FIT_ROWS:
            return np.asarray(reducer.fit_transform(X), dtype=np.float32)
        fit = np.zeros(len(X), dtype=bool)
        fit[np.random.default_rng(seed).choice(len(X), UMAP_FIT_ROWS, replace=False)] = True
        out = np.empty((len(X), 2), dtype=np.float32)
        out[fit] = reducer.fit_transform(X[fit])
        out[~fit] = reducer.transform(X[~fit])
        return out


#: method → f(embeddings (n, dim) float32, seed) → (n, 2) coordinates.
METHODS: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {"pca": _pca, "umap": _umap}
#: The fewest rows each method maps.
MIN_ROWS = {"pca": 2, "umap": 3}


def _method(method: str) -> Callable[[np.ndarray, int], np.ndarray]:
    try:
        return METHODS[method]
    except KeyError:
        raise MapInputError(f"unknown map method {method!r}; methods: {sorted(METHODS)}", argument="method") from None


def project(store, table: str, method: str = "pca", seed: int = 0, where: str | None = None) -> pa.Table:
    """Project the table's embeddings to 2-D by `method` (METHODS), keep the map in the store (not when
    `where` filters the rows) and return it: key, x, y (float32), in key order, its metadata recording the
    method, seed, row count and the fingerprint of the parts it was made from. A store that cannot be
    written still gives the map, with a warning."""
    from artlens.store.maps import map_table

    fn = _method(method)
    entry = store.entry(table)
    if not entry.has_embeddings:
        raise MapInputError(f"table {table!r} has no embeddings to map (a key table of {entry.parent!r}); "
                            "map a table of embeddings", argument="table")
    parts = store.map_fingerprint(table)  # before reading: a part added meanwhile makes the map stale
    rows = load_rows(store, table, [], where)
    if len(rows.keys) < MIN_ROWS.get(method, 2):
        raise MapInputError(f"table {table!r} has {len(rows.keys)} row(s): {method} needs at least "
                            f"{MIN_ROWS.get(method, 2)}", argument="table")
    with threadpool_limits(limits=1):  # as every probe: the same bits on every machine (probes/threads.py)
        xy = fn(np.ascontiguousarray(rows.X, dtype=np.float32), int(seed))
    info = {"seed": int(seed), "parts": parts, "table": table, "dim": int(rows.X.shape[1])}
    if where is not None:
        return map_table(rows.keys, xy, {**info, "method": method, "where": where})
    try:
        store.save_map(table, method, rows.keys, xy, info)
    except OSError as exc:
        warnings.warn(f"the {method} map of {table!r} was not kept in the store ({exc.strerror or exc}); it "
                      "is computed again next time", stacklevel=2)
        return map_table(rows.keys, xy, {**info, "method": method})
    stored = store.map(table, method)
    return stored if stored is not None else map_table(rows.keys, xy, {**info, "method": method})


def map_for(store, table: str, method: str = "pca", seed: int | None = None) -> pa.Table:
    """The table's stored map by `method` when it is current (and made with `seed`, when one is given), else
    `project` computes and stores it (seed 0 by default)."""
    _method(method)
    stored = store.map(table, method)
    if stored is not None and (seed is None or _seed_of(stored) == int(seed)):
        return stored
    return project(store, table, method, seed=0 if seed is None else seed)


def _seed_of(points: pa.Table) -> int | None:
    from artlens.store.maps import map_info

    seed = map_info(points).get("seed")
    return seed if isinstance(seed, int) else None
