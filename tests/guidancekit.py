"""Images and stores for the saliency and guide tests: a small real painting (skipped when the shared data
is missing), procedural paintings, a store table extracted with the tiny model, and an imported table."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from conftest import PAINTINGS, require, write_tar

#: The smallest painting in the shared data (40 KB JPEG, 1:1).
SMALL_PAINTING = "picabia_udnie_1913.jpg"


def small_painting() -> Path:
    return require(PAINTINGS / SMALL_PAINTING)


def procedural_paintings(folder: Path, n: int) -> Path:
    """n sample-corpus paintings as PNG files in `folder`."""
    from pipeline.sample import iter_paintings

    folder.mkdir(parents=True, exist_ok=True)
    for name, image, _ in iter_paintings(n, seed=1, size=(160, 128)):
        image.save(folder / f"{name}.png")
    return folder


def tiny_table(extract, root: Path, table: str = "t") -> Path:
    """A store whose `table` was extracted with the tiny model (one procedural painting); returns the store."""
    from pipeline.sample import render_painting

    buf = io.BytesIO()
    render_painting("wash", "landscape", "earth", seed=3).save(buf, format="PNG")
    shards = write_tar(root / "shards" / "00000.tar", [("p.png", buf.getvalue())]).parent
    summary = extract(shards, table=table, store=root / "store")
    assert summary.exit_code == 0
    return root / "store"


def imported_table(root: Path, table: str = "imported") -> Path:
    """A store with a table of precomputed embeddings (no loadable model); returns the store."""
    from pipeline.importer import ImportConfig, run_import

    vectors = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    source = root / "emb.parquet"
    pq.write_table(pa.table({"key": ["a", "b", "c"], "emb": [list(v) for v in vectors]}), source)
    run_import(ImportConfig(source=str(source), store=str(root / "store"), table=table, embedding_column="emb"))
    return root / "store"
