"""The public API of `import artlens`: neighbours by key, vector, text and image (the table's own model), and
the errors a caller gets for a bad query."""
import numpy as np
import open_clip
import pytest
import torch

import artlens
import imagefactory as f
from conftest import write_tar


@pytest.fixture(scope="module")
def painted(tmp_path_factory, tiny_model):
    """A store whose table `t` holds six JPEGs embedded by the tiny model; returns (store, {key: jpeg bytes})."""
    from artlens.pipeline.extract.config import ExtractConfig
    from artlens.pipeline.extract.run import run_extract

    root = tmp_path_factory.mktemp("api")
    images = {f"p{i}": f.jpeg(96 + 8 * i, 64, (40 * i, 80, 200 - 30 * i)) for i in range(6)}
    write_tar(root / "s" / "00000.tar", [(f"{k}.jpg", data) for k, data in images.items()])
    cfg = ExtractConfig(shards=str(root / "s"), store=str(root / "st"), table="t", workers=0, progress=False)
    assert run_extract(cfg, loaded=tiny_model).table_rows == 6
    return root / "st", images


def _embeddings(store):
    with artlens.open_store(store) as s:
        rows = s.sql("SELECT key, embedding FROM t").to_pylist()
    return {r["key"]: np.asarray(r["embedding"], np.float32) for r in rows}


def test_neighbors_by_key_and_vector_rank_by_cosine(painted):
    store, _ = painted
    table = _embeddings(store)
    got = artlens.neighbors(store, "t", key="p0", k=3).to_pylist()
    expected = sorted((k for k in table if k != "p0"), key=lambda k: -float(table[k] @ table["p0"]))[:3]
    assert [r["key"] for r in got] == expected
    by_vector = artlens.neighbors(store, "t", vector=table["p0"].tolist(), k=1).to_pylist()
    assert by_vector[0]["key"] == "p0" and by_vector[0]["score"] == pytest.approx(1.0, abs=1e-5)


def test_an_image_of_the_table_finds_its_own_row_first(painted):
    store, images = painted
    for key in ("p2", "p5"):
        top = artlens.neighbors(store, "t", image=images[key], k=1, device="cpu").to_pylist()[0]
        assert top["key"] == key and top["score"] == pytest.approx(1.0, abs=1e-4)


def test_text_is_encoded_by_the_tables_own_model(painted, tiny_model):
    store, _ = painted
    tokens = open_clip.get_tokenizer("ViT-B-32")(["a red painting"])  # the tiny config's tokenizer: CLIP's BPE
    with torch.no_grad():
        query = torch.nn.functional.normalize(tiny_model.model.encode_text(tokens).float(), dim=-1)[0].numpy()
    table = _embeddings(store)
    got = artlens.neighbors(store, "t", text="a red painting", k=6, device="cpu").to_pylist()
    assert [r["key"] for r in got] == sorted(table, key=lambda k: -float(table[k] @ query))
    assert [r["score"] for r in got] == pytest.approx([float(table[r["key"]] @ query) for r in got], abs=1e-5)



def test_a_session_of_text_queries_loads_the_tables_model_once(painted):
    from artlens import api
    from artlens.store.catalog import Catalog
    from artlens.store.layout import StoreLayout

    store, _ = painted
    entry = Catalog(StoreLayout.at(store).catalog_path).get("t")
    first = api._model_for(entry, "cpu", None)
    vectors = [api.encode_query(entry, text=t, device="cpu") for t in ("a red painting", "a blue painting")]
    assert api._model_for(entry, "cpu", None) is first          # the same loaded model, not a reload
    assert not np.allclose(vectors[0], vectors[1])                 # and it still encodes each query


@pytest.mark.parametrize("query, message", [
    ({}, "give exactly one of key, vector, text, image"),
    ({"key": "p0", "text": "a painting"}, "give exactly one of"),
    ({"key": "p0", "k": 0}, "k must be at least 1"),
    ({"image": "/no/such/painting.jpg"}, "is not a file"),
])
def test_a_bad_query_is_a_user_error(painted, query, message):
    store, _ = painted
    with pytest.raises(artlens.UserError, match=message):
        artlens.neighbors(store, "t", **query)


def test_dedup_is_public_and_writes_the_groups_the_tables_view_carries(painted):
    store, _ = painted
    summary = artlens.dedup(artlens.DedupConfig(store=store, table="t", threshold=0.5, progress=False))
    with artlens.open_store(store) as s:
        groups = s.sql("SELECT dup_group, count(*) AS n FROM t GROUP BY dup_group").to_pylist()
        assert s.entry("t_dups").parent == "t"
    assert sum(g["n"] for g in groups) == 6 and summary.rows == 6
    assert summary.groups == sum(g["n"] > 1 for g in groups)
    assert summary.rows_in_groups == sum(g["n"] for g in groups if g["n"] > 1)
