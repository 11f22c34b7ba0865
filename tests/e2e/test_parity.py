"""Parity: stored embeddings equal open_clip's reference path on real paintings, end to end via SQL."""
import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

from artlens import store
from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.shards.write import write_shards


@pytest.fixture
def painting_store(tmp_path, paintings, extract):
    write_shards(ShardsConfig(source=str(paintings), out=str(tmp_path / "shards"), shard_size=5, progress=False))
    summary = extract(tmp_path / "shards", table="paintings", workers=2)
    return tmp_path / "store", summary


def reference_embedding(model, path) -> np.ndarray:
    """open_clip's own path: PIL → model preprocess → encode_image → normalise."""
    with torch.no_grad():
        features = model.model.encode_image(model.preprocess(Image.open(path)).unsqueeze(0))
    return torch.nn.functional.normalize(features, dim=-1)[0].numpy()


def test_embeddings_match_open_clip_reference(painting_store, paintings, tiny_model):
    root, summary = painting_store
    assert (summary.images, summary.failures, summary.shards) == (14, 0, 3)
    with store.open(root) as s:
        rows = s.sql("SELECT source_path, embedding FROM paintings").to_pylist()
    assert len(rows) == 14
    for row in rows:
        ref = reference_embedding(tiny_model, paintings / row["source_path"])
        got = np.asarray(row["embedding"], dtype=np.float32)
        assert float(got @ ref) >= 0.9999, row["source_path"]
        np.testing.assert_allclose(got, ref, atol=1e-5, err_msg=row["source_path"])


def test_the_tiny_model_tells_paintings_apart(painting_store):
    """Guard for the parity test: embeddings of different paintings must differ clearly."""
    root, _ = painting_store
    with store.open(root) as s:
        emb = np.array(s.sql("SELECT embedding FROM paintings ORDER BY key").column(0).to_pylist())
    off_diagonal = (emb @ emb.T)[~np.eye(len(emb), dtype=bool)]
    assert off_diagonal.max() < 0.9999
    assert np.abs(emb[:, None, :] - emb[None, :, :]).max(axis=-1)[~np.eye(len(emb), dtype=bool)].min() > 1e-3


def test_sql_top10_by_cosine_on_real_paintings(painting_store):
    root, _ = painting_store
    with store.open(root) as s:
        dim = s.sql("SELECT dim FROM catalog WHERE name = 'paintings'").column(0)[0].as_py()
        typed = s.sql("SELECT typeof(embedding) AS t FROM paintings LIMIT 1").column(0)[0].as_py()
        top = s.sql("""
            SELECT key, array_cosine_similarity(embedding,
                   (SELECT embedding FROM paintings WHERE key = 'munch_the-scream_1893')) AS score
            FROM paintings ORDER BY score DESC LIMIT 10""").to_pylist()
    assert typed == f"FLOAT[{dim}]"
    assert len(top) == 10 and top[0]["key"] == "munch_the-scream_1893"
    assert top[0]["score"] == pytest.approx(1.0, abs=1e-5)
    assert all(a["score"] >= b["score"] for a, b in zip(top, top[1:]))


def test_catalog_records_how_embeddings_were_made(painting_store):
    root, _ = painting_store
    with store.open(root) as s:
        entry = s.sql("SELECT * FROM catalog WHERE name = 'paintings'").to_pylist()[0]
    assert entry["model"].startswith("artlens-tiny-vit (config artlens-tiny-vit.json sha256:")
    assert entry["model_ref"].endswith("tests/fixtures/models/artlens-tiny-vit.json")
    assert entry["pretrained"] == "random:seed=0"
    assert entry["dim"] == 32 and entry["dtype"] == "float32"
    assert entry["rows"] == 14 and entry["failures"] == 0
    assert "exif-transpose" in entry["preprocess"] and "Normalize" in entry["preprocess"]
    assert entry["artlens_version"] and entry["created"] is not None
    assert open_clip.__version__  # the loader used the installed open_clip
