"""`artlens import` and the store's column names (issue 17, point 2): a metadata column named like the store's
own (`Embedding`, `embedding`, `KEY`, names differing only in case) never takes the view's `embedding`; a
file that is not Parquet is refused in one line naming it (point 13)."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from artlens import neighbors, store
from artlens.cli.main import main
from artlens.pipeline.importer import ImportConfig, ImportSourceError, run_import

DIM, N = 8, 12


def _vectors(seed=0):
    v = np.random.default_rng(seed).normal(size=(N, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("vectors_column, constant_column", [("clip", "Embedding"), ("Embedding", "embedding")])
def test_an_embedding_named_metadata_column_never_replaces_the_vectors(tmp_path, vectors_column, constant_column):
    vectors, constant = _vectors(), [1.0] + [0.0] * (DIM - 1)
    source = tmp_path / "emb.parquet"
    pq.write_table(pa.table({
        "key": [f"k{i}" for i in range(N)], vectors_column: [list(map(float, v)) for v in vectors],
        constant_column: [constant] * N, "KEY": [f"upper{i}" for i in range(N)], "style": ["a"] * N,
        "Style": ["b"] * N, "meta_key": ["literal"] * N, "caption": [f"c{i}" for i in range(N)]}), source)
    root = tmp_path / "store"
    summary = run_import(ImportConfig(source=str(source), store=str(root), table="imp",
                                      embedding_column=vectors_column))
    assert (summary.rows, summary.failures, summary.exit_code) == (N, 0, 0)
    with store.open(root) as s:
        got = s.sql("SELECT * FROM imp ORDER BY key").to_pylist()
        stored = np.array(s.sql("SELECT embedding FROM imp ORDER BY key").column(0).to_pylist())
    order = sorted(range(N), key=lambda i: f"k{i}")
    np.testing.assert_allclose(stored, vectors[order], atol=1e-6)
    row = got[0]
    assert (json.loads(row[f"meta_{constant_column}"]), row["meta_KEY"], row["style"], row["Style_2"],
            row["meta_meta_key"], row["caption"]) == (constant, "upper0", "a", "b", "literal", "c0")
    hits = neighbors(root, "imp", key="k0", k=5).to_pylist()
    scores = [h["score"] for h in hits]
    assert max(scores) < 0.999 and scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores, sorted((vectors[1:] @ vectors[0]).tolist(), reverse=True)[:5], atol=1e-5)


def test_a_file_that_is_not_parquet_is_refused_in_one_line_naming_it(tmp_path, capsys):
    csv = tmp_path / "vectors.csv"
    csv.write_bytes("key,clip,title\nk0,\"[1, 0]\",Caf\xe9\n".encode("latin-1"))
    with pytest.raises(ImportSourceError, match="vectors.csv is not a readable Parquet file .a CSV"):
        run_import(ImportConfig(source=str(csv), store=str(tmp_path / "s"), table="t", embedding_column="clip"))
    code = main(["import", str(csv), "--store", str(tmp_path / "s"), "--table", "t", "--embedding-column", "clip"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(csv) in err
