"""Exact nearest neighbours of every row among the rows outside its own group, through a flat FAISS index.

Why: the kNN probe used to compare each row with every other in float64 and fully sort each row of
similarities, which is quadratic with a large constant (about 10 minutes at 80,000 rows on 2 cores). A
FAISS inner-product flat index (`IndexFlatIP`, exhaustive, over the L2-normalised rows) does the same
exhaustive search in float32 BLAS and keeps only a heap of the best candidates per row.

How the answer stays the float64 brute force's (cosine, ties to the lower row):

* Candidates: a row's `k + |own group| + MARGIN` nearest rows by the float32 search always hold its `k`
  nearest rows outside its group (its own group, itself included, can take at most |own group| of them),
  and MARGIN more absorb float32 rounding at the k-th place.
* Queries are taken in order of their group's size, so a block asks for about as many candidates as its
  rows need. Where that would exceed DENSE_FROM (a group of thousands of rows, where FAISS's heap gets
  slow), the block's similarities are computed densely in float32, the own group masked, and the best
  `k + MARGIN` kept by partition.
* Of each row's candidates, the first `k + MARGIN` outside its group (in float32 order) are rescored in
  float64 from the original vectors and ordered by (similarity descending, row ascending): the reference's order, except where more than MARGIN
  rows tie with the k-th within float32 rounding (float ties).

The search runs with the caller's thread limits (the probes' `probe_threads`); faiss is imported with
this module so that `threadpoolctl` sees its OpenMP runtime when the limit is entered.
"""
from __future__ import annotations

import faiss
import numpy as np

MARGIN = 8              # extra float32 candidates per row, for rounding at the k-th place
DENSE_FROM = 2048       # above this many candidates per row, a block is scored densely instead
QUERY_BLOCK = 4096      # query rows per FAISS search call
RESCORE_ELEMENTS = 1 << 23  # float64 values gathered at once when rescoring (64 MiB)
DENSE_ELEMENTS = 1 << 24    # float32 similarities held at once in the dense path (64 MiB)


def unit_rows(X: np.ndarray, chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
    """(rows L2-normalised as float32, their float64 norms floored at 1e-12), in chunks to bound memory."""
    n = len(X)
    unit = np.empty(X.shape, dtype=np.float32)
    norms = np.empty(n)
    for start in range(0, n, chunk):
        block = np.asarray(X[start:start + chunk], dtype=np.float64)
        nb = np.maximum(np.sqrt(np.einsum("ij,ij->i", block, block)), 1e-12)
        norms[start:start + chunk] = nb
        unit[start:start + chunk] = block / nb[:, None]
    return unit, norms


def flat_index(unit: np.ndarray) -> faiss.IndexFlatIP:
    """An exhaustive inner-product index over float32 unit rows (inner product = cosine)."""
    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(np.ascontiguousarray(unit, dtype=np.float32))
    return index


def _dense_candidates(unit: np.ndarray, g: np.ndarray, queries: np.ndarray, m: int) -> np.ndarray:
    """The m best rows outside each query's group by float32 similarity (unordered), densely."""
    n = len(unit)
    rows = max(1, DENSE_ELEMENTS // n)
    out = np.empty((len(queries), m), dtype=np.int64)
    for start in range(0, len(queries), rows):
        q = queries[start:start + rows]
        S = unit[q] @ unit.T
        S[g[q][:, None] == g[None, :]] = -np.inf
        out[start:start + rows] = np.argpartition(-S, m - 1, axis=1)[:, :m]
    return out


def _eligible_first(cand: np.ndarray, g: np.ndarray, q: np.ndarray, m: int) -> np.ndarray:
    """The first m candidates of each row that lie outside its group, in the search's order (-1 where there
    are fewer): only these are rescored, so a big group costs its rows no float64 work."""
    eligible = (cand >= 0) & (g[np.maximum(cand, 0)] != g[q][:, None])
    order = np.argsort(~eligible, axis=1, kind="stable")[:, :m]
    return np.where(np.take_along_axis(eligible, order, axis=1), np.take_along_axis(cand, order, axis=1), -1)


def _best(X: np.ndarray, norms: np.ndarray, q: np.ndarray, cand: np.ndarray,
          k: int) -> tuple[np.ndarray, np.ndarray]:
    """Rescore candidates in float64, order by (similarity desc, row asc), keep k. The candidates lie outside
    each row's group already (`_eligible_first`), so only FAISS's padding (-1) is dropped here."""
    missing = cand < 0  # FAISS pads with -1 when it finds fewer rows than asked
    cand = np.where(missing, 0, cand)
    xq = np.asarray(X[q], dtype=np.float64) / norms[q, None]
    xc = np.asarray(X[cand.ravel()], dtype=np.float64).reshape(*cand.shape, -1) / norms[cand][..., None]
    sim = np.einsum("bmd,bd->bm", xc, xq)
    sim[missing] = -np.inf
    order = np.lexsort((cand, -sim), axis=-1)[:, :k]
    top, idx = np.take_along_axis(sim, order, axis=1), np.take_along_axis(cand, order, axis=1)
    if top.shape[1] < k:  # fewer rows than k: pad
        pad = k - top.shape[1]
        top = np.pad(top, ((0, 0), (0, pad)), constant_values=-np.inf)
        idx = np.pad(idx, ((0, 0), (0, pad)), constant_values=-1)
    return np.where(np.isfinite(top), idx, -1), top


def outside_group(X: np.ndarray, groups: np.ndarray, k: int,
                  block: int = QUERY_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Indices and float64 cosine similarities (n, k) of each row's k nearest rows outside its own group
    (`groups`: one id per row; a row is always in its own group), nearest first, ties to the lower row.
    Slots beyond a row's eligible neighbours hold -1 and -inf."""
    n = len(X)
    unit, norms = unit_rows(X)
    _, g, size = np.unique(np.asarray(groups), return_inverse=True, return_counts=True)
    g = g.ravel()
    own = size[g]
    index = flat_index(unit)
    idx, sim = np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf)
    for q in np.array_split(np.argsort(own, kind="stable"), max(1, -(-n // block))):
        m = min(n, k + int(own[q].max()) + MARGIN)
        if m > DENSE_FROM:
            cand = _dense_candidates(unit, g, q, min(n, k + MARGIN))
        else:
            cand = index.search(unit[q], m)[1]
        cand = _eligible_first(cand, g, q, min(cand.shape[1], k + MARGIN))
        step = max(1, RESCORE_ELEMENTS // (cand.shape[1] * unit.shape[1]))
        for start in range(0, len(q), step):
            sub = slice(start, start + step)
            idx[q[sub]], sim[q[sub]] = _best(X, norms, q[sub], cand[sub], k)
    return idx, sim
