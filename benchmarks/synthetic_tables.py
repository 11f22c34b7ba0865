"""Synthetic embedding tables for index tests and `make bench-store`: clustered, not uniform, unit vectors.

Real CLIP embeddings are far from uniform on the sphere: they crowd into clusters of unequal size and
spread. These vectors do too: cluster sizes follow a Zipf-like law, each cluster has its own spread, and a
shared offset direction makes all of them lean one way, as CLIP's do (mean pairwise cosine well above 0).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter

INTRINSIC = 48  # dimensions of within-cluster variation


def clustered_unit_vectors(n: int, dim: int, clusters: int = 1000, seed: int = 0,
                           chunk: int = 100_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(vectors float32 [m, dim], cluster ids) in chunks; deterministic for a seed."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=dim)
    common /= np.linalg.norm(common)
    centres = rng.normal(size=(clusters, dim))
    centres = centres / np.linalg.norm(centres, axis=1, keepdims=True) + common
    weights = 1.0 / np.arange(1, clusters + 1) ** 0.7
    weights /= weights.sum()
    # variation inside a cluster lives mostly in a shared low-dimensional subspace, as in real embeddings
    basis = rng.normal(size=(INTRINSIC, dim)) / np.sqrt(dim)
    spread = rng.uniform(0.5, 1.0, size=clusters) / np.sqrt(INTRINSIC)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        labels = rng.choice(clusters, size=m, p=weights)
        vectors = (centres[labels] + (rng.normal(size=(m, INTRINSIC)) @ basis) * spread[labels, None]
                   + rng.normal(size=(m, dim)) * (0.1 / np.sqrt(dim)))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        yield vectors.astype(np.float32), labels


def write_synthetic_table(root: str | Path, table: str, n: int, dim: int, part_rows: int = 10_000,
                          clusters: int = 1000, seed: int = 0) -> TableEntry:
    """A store table of n clustered vectors in parts of `part_rows`, with a `cluster` column."""
    entry = TableEntry(name=table, model=f"synthetic-clustered-{clusters}", model_ref="", pretrained="synthetic",
                       preprocess=f"none: synthetic seed={seed}", dim=dim, source="benchmarks.synthetic_tables")
    writer = TableWriter(root, entry, overwrite=True)
    made = 0
    for vectors, labels in clustered_unit_vectors(n, dim, clusters, seed, chunk=part_rows):
        shard = f"synthetic-{made // part_rows:05d}"
        rows = [{"key": f"v{made + i:08d}", "shard": shard, "cluster": int(c)} for i, c in enumerate(labels)]
        writer.commit(shard, rows, vectors, [])
        made += len(rows)
    return writer.finish()
