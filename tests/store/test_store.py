"""The store: layout, catalog, views, and readers working while an extraction appends parts."""
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pytest

import imagefactory as f
from artlens import store
from conftest import REPO, TINY_MODEL, meta, write_tar
from artlens.store.catalog import Catalog, TableEntry
from artlens.store.layout import LayoutError, StoreLayout, check_table_name
from artlens.store.parts import rows_to_table
from artlens.store.writer import TableWriter


def entry(name="t", dim=4, **kw):
    return TableEntry(name=name, model="m", pretrained="random:seed=0", preprocess="p", dim=dim, **kw)


def unit(n, dim=4, seed=0):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_table_names_are_validated():
    for bad in ["", "1abc", "a-b", "a b", "failures", "catalog", "x" * 64, "a;DROP"]:
        with pytest.raises(LayoutError):
            check_table_name(bad)
    assert check_table_name("wikiart_vit_b32") == "wikiart_vit_b32"


def test_writer_commit_and_views(tmp_path):
    w = TableWriter(tmp_path, entry())
    w.commit("a.tar", [{"key": "k1", "shard": "a.tar", "style": "x"}], unit(1), [])
    w.commit("b.tar", [{"key": "k2", "shard": "b.tar"}], unit(1, seed=1),
             [{"key": "bad", "shard": "b.tar", "stage": "decode", "error": "boom"}])
    assert w.finish().rows == 2
    with store.open(tmp_path) as s:
        assert s.tables() == ["t"]
        assert s.sql("SELECT typeof(embedding) FROM t LIMIT 1").column(0)[0].as_py() == "FLOAT[4]"
        assert s.sql("SELECT key, stage FROM failures").to_pylist() == [{"key": "bad", "stage": "decode"}]
        assert s.sql("SELECT rows, failures FROM catalog").to_pylist() == [{"rows": 2, "failures": 1}]
        cos = s.sql("SELECT array_cosine_similarity(embedding, embedding) c FROM t").column(0).to_pylist()
        assert cos == pytest.approx([1.0, 1.0], abs=1e-6)


def test_empty_store_table_and_failures_views(tmp_path):
    TableWriter(tmp_path, entry()).finish()
    with store.open(tmp_path) as s:
        assert s.sql("SELECT count(*) FROM t").column(0)[0].as_py() == 0
        assert s.sql("SELECT count(*) FROM failures").column(0)[0].as_py() == 0


def test_missing_store_and_unknown_table_are_clear_errors(tmp_path):
    with pytest.raises(store.StoreError, match="no store at"):
        store.open(tmp_path / "nowhere")
    TableWriter(tmp_path, entry()).finish()
    with store.open(tmp_path) as s:
        with pytest.raises(store.StoreError, match="no table 'x'.*tables: \\['t'\\]"):
            s.entry("x")
        with pytest.raises(store.StoreError, match="query failed"):
            s.sql("SELECT * FROM nonexistent")


def test_mixed_types_within_one_part_kept_as_text():
    table, conflicts = rows_to_table([{"key": "a", "year": 1889}, {"key": "b", "year": "c. 1810"}], unit(2), 4)
    assert table.column("year").to_pylist() == ["1889", "c. 1810"]
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 4)
    assert "year" in conflicts


def test_rows_and_vectors_must_match():
    with pytest.raises(ValueError, match="2 rows but 1 embeddings"):
        rows_to_table([{"key": "a"}, {"key": "b"}], unit(1), 4)


def test_catalog_waits_for_a_briefly_held_lock(tmp_path):
    cat = Catalog(tmp_path / "catalog.duckdb")
    cat.put(entry())
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, time, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
        "time.sleep(1.5); c.close()"), str(tmp_path / "catalog.duckdb")], stdout=subprocess.PIPE)
    assert holder.stdout.readline().strip() == b"held"
    assert [e.name for e in cat.entries()] == ["t"]  # waits, then reads
    holder.wait()


def test_layout_keeps_temporaries_out_of_the_glob(tmp_path):
    layout = StoreLayout.at(tmp_path)
    d = layout.table_dir("t")
    d.mkdir(parents=True)
    (d / ".tmp-abc-part-x.parquet").write_bytes(b"half")
    (d / "part-x.parquet").write_bytes(b"")
    assert [p.name for p in layout.parts("t")] == ["part-x.parquet"]
    assert [p.name for p in layout.stale_temporaries("t")] == [".tmp-abc-part-x.parquet"]


@pytest.mark.slow
def test_readers_work_while_an_extraction_appends(tmp_path):
    shards = tmp_path / "shards"
    for s in range(8):
        write_tar(shards / f"{s:05d}.tar", [(f"s{s}_0.json", meta(n=s))] + [
            (f"s{s}_{i}.jpg", f.jpeg(128, 96, color=(30 * s, 8 * i, 0))) for i in range(8)])
    cmd = [sys.executable, "-m", "artlens", "extract", "--shards", str(shards), "--store",
           str(tmp_path / "store"), "--table", "t", "--model", TINY_MODEL, "--pretrained", "random",
           "--device", "cpu", "--batch-size", "2", "--workers", "0", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    while proc.poll() is None:
        if (tmp_path / "store" / "catalog.duckdb").exists():
            try:
                with store.open(tmp_path / "store") as s:
                    if "t" in s.tables():
                        n, distinct = s.sql("SELECT count(*), count(DISTINCT key) FROM t").to_pylist()[0].values()
                        assert n % 8 == 0 and n == distinct  # only whole parts, never half of one
                        seen.append(n)
            except store.StoreError as exc:
                assert "catalog" not in str(exc), exc
        time.sleep(0.01)
    assert proc.returncode == 0, proc.stderr.read().decode()[-2000:]
    assert len(set(seen)) >= 2, f"readers saw no intermediate states: {sorted(set(seen))}"
    with store.open(tmp_path / "store") as s:
        assert s.sql("SELECT count(*) FROM t").column(0)[0].as_py() == 64


def test_catalog_written_by_an_older_version_is_read_and_extended(tmp_path):
    import duckdb

    con = duckdb.connect(str(tmp_path / "catalog.duckdb"))
    con.execute("CREATE TABLE tables (name VARCHAR PRIMARY KEY, model VARCHAR, dim INTEGER)")
    con.execute("INSERT INTO tables VALUES ('old', 'ViT-B-32', 512)")
    con.close()
    cat = Catalog(tmp_path / "catalog.duckdb")
    assert [(e.name, e.model, e.dim) for e in cat.entries()] == [("old", "ViT-B-32", 512)]
    cat.put(entry("new", model_ref="ViT-B-32"))
    assert {e.name: e.model_ref for e in cat.entries()} == {"new": "ViT-B-32", "old": ""}


def test_a_new_writer_removes_the_temporaries_of_dead_writers_only(tmp_path):
    """A second writer of a table (another --devices process, a concurrent extract) must not delete the
    part another live process is about to rename; what a killed writer left is cleaned up."""
    entry = TableEntry(name="t", model="m", pretrained="p", preprocess="x", dim=2)
    first = TableWriter(tmp_path, entry)
    folder = first.layout.table_dir("t")
    folder.mkdir(parents=True, exist_ok=True)
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    names = {"live": f".tmp-{alive.pid}-0123abcd-part-a.parquet",
             "dead": f".tmp-{int(dead.stdout)}-0123abcd-part-b.parquet",
             "old": ".tmp-0123abcd-part-c.parquet"}  # a name from before temporaries carried a process id
    try:
        for name in names.values():
            (folder / name).write_bytes(b"half a part")
        TableWriter(tmp_path, entry)
        assert sorted(p.name for p in folder.iterdir()) == [names["live"]]
    finally:
        alive.kill()
        alive.wait()
    TableWriter(tmp_path, entry)
    assert list(folder.iterdir()) == []
