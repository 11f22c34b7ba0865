"""Synthetic tables for `make bench-probes`: clustered 768-d image embeddings with a style label, an artist
and a rating, and a text table of style prompts in the same (synthetic) model.

The vectors are `synthetic_tables.clustered_unit_vectors` (Zipf-sized clusters leaning one shared way, as
CLIP's do); each cluster is an artist, each artist paints in one of `styles` styles, and a style direction
is added to its paintings so that the label can be read off, as a real one can. The rating is a noisy
projection on one random direction. The prompts of a style lie near its direction, so zero-shot works.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter
from benchmarks.synthetic_tables import clustered_unit_vectors

STYLES = 27          # WikiArt's number of styles
STYLE_WEIGHT = 0.6   # length of the style direction added to a unit vector
PROMPTS_PER_STYLE = 4
MODEL = dict(model="synthetic-probes", model_ref="", pretrained="synthetic", preprocess="none: synthetic")


def _unit(V: np.ndarray) -> np.ndarray:
    return V / np.linalg.norm(V, axis=1, keepdims=True)


def write_probe_tables(root: str | Path, n: int, dim: int = 768, artists: int = 1000, styles: int = STYLES,
                       table: str = "bench", texts: str = "bench_style_prompts", seed: int = 0,
                       part_rows: int = 20_000) -> dict:
    """Write the image table (`style`, `artist`, `rating`) and the text table; returns what was written."""
    rng = np.random.default_rng(seed + 1)
    style_dirs = _unit(rng.normal(size=(styles, dim)))
    artist_style = rng.integers(0, styles, artists)
    rating_dir = _unit(rng.normal(size=(1, dim)))[0]
    writer = TableWriter(root, TableEntry(name=table, dim=dim, source="benchmarks.probe_tables", **MODEL),
                         overwrite=True)
    made = 0
    for vectors, artist in clustered_unit_vectors(n, dim, artists, seed, chunk=part_rows):
        style = artist_style[artist]
        V = _unit(vectors + STYLE_WEIGHT * style_dirs[style]).astype(np.float32)
        rating = 5 + 20 * (V @ rating_dir) + rng.normal(scale=0.5, size=len(V))
        shard = f"synthetic-{made // part_rows:05d}"
        rows = [{"key": f"p{made + i:08d}", "shard": shard, "style": f"style-{s:02d}", "artist": f"artist-{a:04d}",
                 "rating": float(r)} for i, (s, a, r) in enumerate(zip(style, artist, rating))]
        writer.commit(shard, rows, V, [])
        made += len(rows)
    writer.finish()
    labels = np.repeat(np.arange(styles), PROMPTS_PER_STYLE)
    P = _unit(style_dirs[labels] + 0.3 * rng.normal(size=(len(labels), dim)) / np.sqrt(dim)).astype(np.float32)
    text = TableWriter(root, TableEntry(name=texts, kind="text", dim=dim, source="benchmarks.probe_tables", **MODEL),
                       overwrite=True)
    text.commit("prompts", [{"key": f"t{i:04d}", "shard": "prompts", "label": f"style-{c:02d}",
                             "template": f"a painting in {{}} ({i % PROMPTS_PER_STYLE})", "name": f"style-{c:02d}",
                             "prompt": f"a painting in style-{c:02d} ({i % PROMPTS_PER_STYLE})"}
                            for i, c in enumerate(labels)], P, [])
    text.finish()
    return {"table": table, "texts": texts, "rows": made, "dim": dim, "artists": artists, "styles": styles}
