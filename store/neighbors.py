"""Nearest neighbours of a row or a vector in a table, optionally filtered by SQL, best first.

Without a filter the table's FAISS index answers (exact numpy search when there is none and the table is
small). With `where`, the allowed rows come from SQL: few of them are searched exactly; many are searched
through the index with growing oversampling, falling back to exact search, so k results come back
whenever k rows match.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from artlens.store.errors import UserError
from artlens.store.filters import check_filter, select_rows
from artlens.store.index import LoadedIndex, open_index

if TYPE_CHECKING:
    from artlens.store.query import Store

EXACT_LIMIT = 200_000          # rows searched exactly (numpy) when a filter or no index leaves at most this


class NeighborsError(UserError):
    pass


def query_vector(store: "Store", table: str, key: str) -> np.ndarray:
    store.entry(table).unique_keys_needed("nearest-neighbour searches")  # no such table: lists the tables
    found = store.sql(f'SELECT embedding FROM "{table}" WHERE key = ? LIMIT 1', [key])
    if found.num_rows == 0:
        raise NeighborsError(f"no row with key {key!r} in table {table!r}")
    return np.asarray(found.column(0)[0].as_py(), dtype=np.float32)


def _exact(store: "Store", table: str, vector: np.ndarray, k: int, where: str | None,
           exclude: set[str]) -> list[tuple[str, str, float]]:
    rows = select_rows(store, table, "key, shard, embedding", where)
    if rows.num_rows == 0:
        return []
    flat = rows.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    scores = np.asarray(flat, np.float32).reshape(rows.num_rows, -1) @ vector
    keys, shards = rows.column("key").to_pylist(), rows.column("shard").to_pylist()
    order = np.argsort(-scores, kind="stable")
    hits = ((keys[i], shards[i], float(scores[i])) for i in order if keys[i] not in exclude)
    return [h for _, h in zip(range(k), hits)]


def _indexed(index: LoadedIndex, vector: np.ndarray, k: int, exclude: set[str],
             allowed: set[tuple[str, str]] | None) -> list[tuple[str, str, float]] | None:
    """Search the index, widening until k acceptable hits; None when even a full scan came up short."""
    n = index.index.ntotal
    fetch = k + len(exclude) + (0 if allowed is None else int(k * n / max(len(allowed), 1)))
    while True:
        fetch = min(max(fetch, k), n)
        scores, ids = index.search(vector[None], fetch)
        hits = []
        for score, i in zip(scores[0], ids[0]):
            if i < 0:
                continue
            row = (index.keys[i], index.shards[i])
            if row[0] in exclude or (allowed is not None and row not in allowed):
                continue
            hits.append((row[0], row[1], float(score)))
        if len(hits) >= k or fetch >= n:
            return hits[:k] if len(hits) >= k or allowed is None else None
        fetch *= 4


def search(store: "Store", table: str, vector: np.ndarray, k: int = 10, where: str | None = None,
           exclude: set[str] | None = None) -> list[tuple[str, str, float]]:
    """(key, shard, score) of the k best rows, best first."""
    entry = store.entry(table)
    entry.unique_keys_needed("nearest-neighbour searches")
    where = check_filter(where) if where else None
    exclude = exclude or set()
    vector = np.asarray(vector, np.float32).reshape(-1)
    if vector.shape[0] != entry.dim:
        raise NeighborsError(f"query vector has {vector.shape[0]} dimensions, table {table!r} has {entry.dim}")
    vector = vector / max(float(np.linalg.norm(vector)), 1e-12)
    index = store.index(table)
    allowed = None
    if where:
        allowed_rows = select_rows(store, table, "key, shard", where)
        if index is None or allowed_rows.num_rows <= EXACT_LIMIT:
            return _exact(store, table, vector, k, where, exclude)
        allowed = set(zip(allowed_rows.column("key").to_pylist(), allowed_rows.column("shard").to_pylist()))
    if index is None:
        if entry.rows > EXACT_LIMIT:
            raise NeighborsError(f"table {table!r} has {entry.rows:,} rows and no index; build one: "
                                 f"artlens index --store {store.layout.root} --table {table}")
        return _exact(store, table, vector, k, None, exclude)
    hits = _indexed(index, vector, k, exclude, allowed)
    return hits if hits is not None else _exact(store, table, vector, k, where, exclude)


def neighbors_table(store: "Store", table: str, hits: list[tuple[str, str, float]]) -> pa.Table:
    """The hits with every metadata column of their rows, best first."""
    ranked = pa.table({"rank": pa.array(range(1, len(hits) + 1), pa.int32()),
                       "key": pa.array([h[0] for h in hits], pa.string()),
                       "_shard": pa.array([h[1] for h in hits], pa.string()),
                       "score": pa.array([h[2] for h in hits], pa.float32())})
    store.con.register("_hits", ranked)
    try:
        return store.sql(f'SELECT h.rank, h.key, h.score, t.* EXCLUDE (key, embedding) FROM _hits h '
                         f'JOIN "{table}" t ON t.key = h.key AND t.shard = h._shard ORDER BY h.rank')
    finally:
        store.con.unregister("_hits")


def open_table_index(store: "Store", table: str) -> LoadedIndex | None:
    return open_index(store.layout.root, table, store.entry(table).dim)
