"""FAISS indexes and nearest neighbours: kind choice, id mapping, recall, staleness, filters, SQL, CLI."""
import json

import faiss
import numpy as np
import pyarrow.parquet as pq
import pytest

import imagefactory as f
from artlens import store
from artlens.store import neighbors as nb
from conftest import TINY_MODEL, write_tar
from artlens.cli.main import main
from artlens.store.catalog import Catalog
from artlens.store.index import (KINDS, IndexUnavailable, build_index, choose_kind, factory_for, hnsw_bytes,
                                 ivfsq_bytes, open_index, parse_bytes)
from artlens.store.layout import StoreLayout
from benchmarks.synthetic_tables import write_synthetic_table


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("syn")
    write_synthetic_table(root, "vec", n=12_000, dim=32, part_rows=3000, clusters=40, seed=1)
    return root


def exact_top(root, table, key, k, where="true"):
    with store.open(root) as s:
        rows = s.sql(f"""SELECT key FROM {table} WHERE ({where}) AND key <> '{key}' ORDER BY
            array_cosine_similarity(embedding, (SELECT embedding FROM {table} WHERE key = '{key}')) DESC
            LIMIT {k}""")
    return rows.column(0).to_pylist()


def test_auto_choice_follows_size_and_memory():
    assert choose_kind(9_999, 768, parse_bytes("4G")) == "flat"
    assert choose_kind(10_000, 768, parse_bytes("4G")) == "hnsw"
    assert choose_kind(499_999, 768, parse_bytes("4G")) == "hnsw"
    # large tables: IVF + SQ8 + exact re-ranking while it fits, HNSW (smaller) below that, OPQ+IVF+PQ below both
    assert choose_kind(1_000_000, 768, parse_bytes("4G")) == "ivfsq"
    assert hnsw_bytes(1_000_000, 768) < ivfsq_bytes(1_000_000, 768) <= parse_bytes("4G")
    assert choose_kind(1_000_000, 768, ivfsq_bytes(1_000_000, 768) - 1) == "hnsw"
    assert choose_kind(1_000_000, 768, hnsw_bytes(1_000_000, 768) - 1) == "ivfpq"
    assert choose_kind(500, 768, 1) == "flat"
    assert factory_for("ivfsq", 1_000_000, 768, parse_bytes("4G"))[0] == "IVF4096,SQ8,RFlat"
    factory, spec = factory_for("ivfpq", 1_000_000, 768, parse_bytes("1G"))
    assert factory.startswith("OPQ") and ",IVF" in factory and spec.tune == "nprobe"
    assert parse_bytes("512M") == 512 * 2**20 and parse_bytes("1.5G") == int(1.5 * 2**30)
    with pytest.raises(ValueError, match="cannot read memory size"):
        parse_bytes("lots")


def test_hnsw_index_maps_ids_to_rows_and_reaches_recall(synthetic):
    entry = build_index(synthetic, "vec", progress=False)
    assert (entry.kind, entry.factory, entry.rows) == ("hnsw", KINDS["hnsw"].factory, 12_000)
    assert entry.recall_at_10 >= 0.95 and entry.recall_queries == 1000
    assert "efSearch" in json.loads(entry.params)
    layout = StoreLayout.at(synthetic)
    _, ids_path = layout.index_files("vec", entry.generation)
    ids = pq.read_table(ids_path)
    assert ids.column("id").to_pylist() == list(range(12_000))
    with store.open(synthetic) as s:
        keys = set(s.sql("SELECT key FROM vec").column(0).to_pylist())
        catalog = s.sql("SELECT index_kind, index_rows, index_recall_at_10 FROM catalog WHERE name = 'vec'")
        result = s.neighbors("vec", key="v00000042", k=10)
    assert set(ids.column("key").to_pylist()) == keys
    assert catalog.to_pylist() == [{"index_kind": "hnsw", "index_rows": 12_000,
                                    "index_recall_at_10": entry.recall_at_10}]
    assert result.column("key").to_pylist()[0] != "v00000042" and result.num_rows == 10
    assert "v00000042" not in result.column("key").to_pylist()
    overlap = set(result.column("key").to_pylist()) & set(exact_top(synthetic, "vec", "v00000042", 10))
    assert len(overlap) >= 8
    scores = result.column("score").to_pylist()
    assert scores == sorted(scores, reverse=True)


def test_index_entry_is_in_the_catalog(synthetic):
    build_index(synthetic, "vec", kind="flat", progress=False)
    entry = Catalog(StoreLayout.at(synthetic).catalog_path).get_index("vec")
    assert entry.kind == "flat" and entry.recall_at_10 == 1.0 and entry.build_s >= 0
    assert sorted(entry.covered()) == sorted(p.name for p in StoreLayout.at(synthetic).parts("vec"))
    assert entry.memory_bytes > 12_000 * 32 * 4


def test_factory_strings_are_accepted_and_tuned(synthetic):
    entry = build_index(synthetic, "vec", kind="IVF64,Flat", progress=False)
    assert entry.kind == "factory" and "nprobe" in json.loads(entry.params)
    assert entry.recall_at_10 >= 0.95
    with pytest.raises(IndexUnavailable, match="kinds are auto, flat, hnsw, ivfpq, ivfsq, or a FAISS factory"):
        build_index(synthetic, "vec", kind="NoSuchIndex42", progress=False)


def test_ivfsq_sets_its_refine_factor_at_build_and_load_and_takes_new_parts(tmp_path):
    write_synthetic_table(tmp_path, "t", n=6000, dim=32, part_rows=3000, clusters=20, seed=5)
    entry = build_index(tmp_path, "t", kind="ivfsq", progress=False)
    params = json.loads(entry.params)
    assert (entry.kind, entry.factory) == ("ivfsq", factory_for("ivfsq", 6000, 32, 2**30)[0])
    assert entry.factory.startswith("IVF") and entry.factory.endswith(",SQ8,RFlat")
    assert params["k_factor_rf"] == 2 and params["nprobe"] in KINDS["ivfsq"].grid
    assert entry.recall_at_10 >= 0.95
    loaded = open_index(tmp_path, "t", 32)
    refine = faiss.downcast_index(loaded.index)
    assert refine.k_factor == 2 and faiss.extract_index_ivf(refine.base_index).nprobe == params["nprobe"]
    from artlens.store.writer import TableWriter

    writer = TableWriter(tmp_path, Catalog(StoreLayout.at(tmp_path).catalog_path).get("t"))
    vec = np.eye(32, dtype=np.float32)[:2]
    writer.commit("late-shard", [{"key": "late1", "shard": "late-shard"}, {"key": "late2", "shard": "late-shard"}],
                  vec, [])
    writer.finish()
    with store.open(tmp_path) as s:
        assert s.neighbors("t", vector=vec[1], k=1).column("key").to_pylist() == ["late2"]
    updated = Catalog(StoreLayout.at(tmp_path).catalog_path).get_index("t")
    assert updated.rows == 6002 and json.loads(updated.params) == params
    again = faiss.downcast_index(open_index(tmp_path, "t", 32).index)
    assert again.ntotal == 6002 and again.k_factor == 2


def test_refined_factory_strings_record_their_refine_factor(synthetic):
    entry = build_index(synthetic, "vec", kind="IVF64,SQ8,RFlat", progress=False)
    assert entry.kind == "factory" and json.loads(entry.params)["k_factor_rf"] == 2
    assert entry.recall_at_10 >= 0.95
    entry = build_index(synthetic, "vec", kind="HNSW32,SQ8,RFlat", progress=False)
    assert json.loads(entry.params)["k_factor_rf"] == 2 and "efSearch" in json.loads(entry.params)
    loaded = open_index(synthetic, "vec", 32)  # held: FAISS objects below point into it
    refine = faiss.downcast_index(loaded.index)
    graph = faiss.downcast_index(refine.base_index).hnsw
    assert graph.efConstruction == dict(KINDS["hnsw"].build)["efConstruction"]  # set inside the wrapper too


@pytest.mark.slow
def test_ivfpq_beyond_the_memory_budget(tmp_path):
    # 16-d and just above IVFPQ_MIN_ROWS: 7 s to train and tune here (12,000 × 32-d took 17 s)
    write_synthetic_table(tmp_path, "big", n=10_000, dim=16, part_rows=5000, clusters=40, seed=2)
    entry = build_index(tmp_path, "big", max_memory=hnsw_bytes(10_000, 16) - 1, progress=False)
    assert entry.kind == "ivfpq" and entry.factory.startswith("OPQ")
    assert entry.memory_bytes < 10_000 * 16 * 4  # compressed below the raw vectors
    assert 0 < entry.recall_at_10 <= 1
    with store.open(tmp_path) as s:
        assert s.neighbors("big", key="v00000001", k=5).num_rows == 5


def test_where_filter_returns_k_when_k_exist(synthetic, monkeypatch):
    build_index(synthetic, "vec", progress=False)
    with store.open(synthetic) as s:
        few = s.neighbors("vec", key="v00000007", k=5, where="cluster = 3")
        assert few.num_rows == 5 and set(few.column("cluster").to_pylist()) == {3}
        assert few.column("key").to_pylist() == exact_top(synthetic, "vec", "v00000007", 5, "cluster = 3")
        monkeypatch.setattr(nb, "EXACT_LIMIT", 10)  # force the oversampling path through the index
        many = s.neighbors("vec", key="v00000007", k=8, where="cluster % 7 = 1")
        assert many.num_rows == 8 and all(c % 7 == 1 for c in many.column("cluster").to_pylist())
        rare = s.neighbors("vec", key="v00000007", k=3, where="key IN ('v00000100', 'v00000200', 'v00011999')")
        assert sorted(rare.column("key").to_pylist()) == ["v00000100", "v00000200", "v00011999"]
        none = s.neighbors("vec", key="v00000007", k=3, where="cluster < 0")
        assert none.num_rows == 0


def test_new_parts_are_added_incrementally_changed_parts_make_it_stale(tmp_path):
    write_synthetic_table(tmp_path, "t", n=4000, dim=16, part_rows=2000, clusters=10, seed=3)
    build_index(tmp_path, "t", kind="hnsw", progress=False)
    from artlens.store.writer import TableWriter

    entry = Catalog(StoreLayout.at(tmp_path).catalog_path).get("t")
    writer = TableWriter(tmp_path, entry)
    vec = np.eye(16, dtype=np.float32)[:2]
    writer.commit("late-shard", [{"key": "late1", "shard": "late-shard"}, {"key": "late2", "shard": "late-shard"}],
                  vec, [])
    writer.finish()
    with store.open(tmp_path) as s:
        result = s.neighbors("t", vector=vec[0], k=1)
    assert result.column("key").to_pylist() == ["late1"]
    updated = Catalog(StoreLayout.at(tmp_path).catalog_path).get_index("t")
    assert updated.rows == 4002 and "part-late-shard" in " ".join(updated.covered())
    part = next(p for p in StoreLayout.at(tmp_path).parts("t") if p.name.startswith("part-synthetic"))
    pq.write_table(pq.read_table(part).slice(1), part)  # a part the index covers changed
    with store.open(tmp_path) as s:
        with pytest.raises(IndexUnavailable, match="stale.*rebuild it: artlens index"):
            s.neighbors("t", vector=vec[0], k=1)


def test_sql_neighbors_function_and_cosine_macro(synthetic):
    build_index(synthetic, "vec", progress=False)
    with store.open(synthetic) as s:
        keys = s.sql("SELECT neighbors('vec', embedding, 4) AS nb FROM vec WHERE key = 'v00000042'")
        joined = s.sql("""
            SELECT n.key, n.cluster, cosine(n.embedding, q.embedding) AS score
            FROM (SELECT embedding FROM vec WHERE key = 'v00000042') q,
                 unnest(neighbors('vec', q.embedding, 4)) AS u(nkey)
            JOIN vec n ON n.key = u.nkey ORDER BY score DESC""")
    found = keys.column(0)[0].as_py()
    assert len(found) == 4 and found[0] == "v00000042"  # the SQL function does not exclude the query row
    assert joined.column("key").to_pylist() == found


def test_no_index_small_table_is_searched_exactly(tmp_path):
    write_synthetic_table(tmp_path, "small", n=500, dim=16, part_rows=500, clusters=5, seed=4)
    with store.open(tmp_path) as s:
        assert s.index("small") is None
        got = s.neighbors("small", key="v00000003", k=4).column("key").to_pylist()
    assert got == exact_top(tmp_path, "small", "v00000003", 4)


def test_clear_errors(tmp_path, synthetic):
    with store.open(synthetic) as s:
        with pytest.raises(nb.NeighborsError, match="no row with key 'nope'"):
            s.neighbors("vec", key="nope")
        with pytest.raises(nb.NeighborsError, match="query vector has 3 dimensions"):
            s.neighbors("vec", vector=[1.0, 0.0, 0.0])
        with pytest.raises(store.StoreError, match="exactly one of key= or vector="):
            s.neighbors("vec")
    with pytest.raises(IndexUnavailable, match="no table 'ghost'"):
        build_index(synthetic, "ghost", progress=False)


def test_cli_index_and_neighbors_by_key_text_and_image(tmp_path, capsys, paintings):
    shards = write_tar(tmp_path / "s" / "00000.tar", [(f"p{i}.jpg", f.jpeg(96 + 8 * i, 64, (20 * i, 80, 160)))
                                                      for i in range(6)]).parent
    assert main(["extract", "--shards", str(shards), "--store", str(tmp_path / "st"), "--table", "t", "--model",
                 TINY_MODEL, "--pretrained", "random", "--device", "cpu", "--workers", "0", "--no-progress"]) == 0
    assert main(["index", "--store", str(tmp_path / "st"), "--table", "t", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "flat (Flat), 6 rows" in out and "10-recall@10 against exact search on 6 sampled queries: 1.0000" in out
    base = ["neighbors", "--store", str(tmp_path / "st"), "--table", "t", "-k", "3", "--format", "jsonl"]
    assert main(base + ["--key", "p0"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and "p0" not in [r["key"] for r in rows] and rows[0]["rank"] == 1
    assert main(base + ["--text", "a red painting", "--where", "width > 100"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 3 and all(r["width"] > 100 for r in rows)
    assert main(base + ["--image", str(paintings / "munch_the-scream_1893.jpg")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
    assert main(base + ["--key", "missing"]) == 2
    assert "no row with key 'missing'" in capsys.readouterr().err
