"""A table's 2-D map (probes/maps.py, kept by store/maps.py): its shape and keys, determinism, what PCA finds,
reuse of the stored map and its recomputation once the table changed, UMAP, and the inputs it refuses."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from artlens import store
from artlens.errors import UserError
from artlens.probes.maps import MapInputError, map_for, project
from artlens.store.catalog import TableEntry
from artlens.store.maps import map_info
from artlens.store.query import StoreWarning
from artlens.store.writer import TableWriter, write_key_table

DIM = 16


def _commit(writer: TableWriter, shard: str, keys: list[str], X: np.ndarray, labels: list[str]) -> None:
    rows = [{"key": k, "shard": shard, "cluster": c} for k, c in zip(keys, labels)]
    writer.commit(shard, rows, np.asarray(X, np.float32), [])


def _clusters(n: int, seed: int, offset: int = 0) -> tuple[list[str], np.ndarray, list[str]]:
    """Two clusters planted along one direction (±4), noise of sd 1 elsewhere: keys, embeddings, labels."""
    rng = np.random.default_rng(seed)
    side = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    X = rng.normal(size=(n, DIM))
    X[:, 3] += 4.0 * side
    keys = [f"k{offset + i:04d}" for i in range(n)]
    return keys, X, ["a" if s > 0 else "b" for s in side]


@pytest.fixture
def clustered(tmp_path):
    """A store with one table `t` of 120 rows in two planted clusters (one part)."""
    root = tmp_path / "store"
    writer = TableWriter(root, TableEntry(name="t", model="m", pretrained="p", preprocess="x", dim=DIM))
    _commit(writer, "s0", *_clusters(120, seed=1))
    writer.finish()
    return root


def _add_part(root, n: int = 10) -> None:
    writer = TableWriter(root, TableEntry(name="t", model="m", pretrained="p", preprocess="x", dim=DIM))
    _commit(writer, "s1", *_clusters(n, seed=2, offset=1000))
    writer.finish()


def test_pca_map_has_one_point_per_row_keyed_like_the_table(clustered):
    with store.open(clustered) as s:
        points = project(s, "t", "pca")
        keys = s.sql("SELECT key FROM t ORDER BY key").column("key").to_pylist()
    assert points.column_names == ["key", "x", "y"]
    assert points.num_rows == 120
    assert str(points.schema.field("x").type) == "float" and str(points.schema.field("y").type) == "float"
    assert points.column("key").to_pylist() == keys
    info = map_info(points)
    assert info["method"] == "pca" and info["seed"] == 0 and info["rows"] == 120 and info["parts"]


def test_pca_first_axis_separates_the_planted_clusters(clustered):
    with store.open(clustered) as s:
        points = project(s, "t", "pca").to_pydict()
        labels = dict(zip(*s.sql("SELECT key, cluster FROM t").to_pydict().values()))
    x = np.asarray(points["x"])
    side = np.array([labels[k] == "a" for k in points["key"]])
    assert min(x[side].min(), x[~side].min()) < 0 < max(x[side].max(), x[~side].max())
    assert x[side].min() > x[~side].max() or x[~side].min() > x[side].max()  # no overlap on the first axis


def test_same_seed_same_map(clustered, tmp_path):
    with store.open(clustered) as s:
        first = project(s, "t", "pca", seed=3)
        second = project(s, "t", "pca", seed=3)
    assert first.column("x").to_pylist() == second.column("x").to_pylist()
    assert first.column("y").to_pylist() == second.column("y").to_pylist()


def test_stored_map_is_reused_then_recomputed_after_a_new_part(clustered):
    with store.open(clustered) as s:
        assert s.map("t", "pca") is None  # none made yet
        made = map_for(s, "t", "pca")
        path = s.layout.map_path("t", "pca")
        assert path.is_file() and pq.read_table(path).num_rows == 120
        stamp = path.stat().st_mtime_ns
        time.sleep(0.02)
        again = map_for(s, "t", "pca")
        assert path.stat().st_mtime_ns == stamp  # read back, not written again
        assert again.column("x").to_pylist() == made.column("x").to_pylist()
    _add_part(clustered, 10)
    with store.open(clustered) as s:
        assert s.map("t", "pca") is None  # stale: the table has a part the map does not know
        fresh = map_for(s, "t", "pca")
        assert fresh.num_rows == 130 and "k1000" in fresh.column("key").to_pylist()
        assert path.stat().st_mtime_ns != stamp
        assert s.map("t", "pca").num_rows == 130


def test_a_filtered_map_is_returned_not_stored(clustered):
    with store.open(clustered) as s:
        points = project(s, "t", "pca", where="cluster = 'a'")
        assert points.num_rows == 60
        assert s.map("t", "pca") is None


def test_a_damaged_map_file_warns_and_is_made_again(clustered):
    with store.open(clustered) as s:
        map_for(s, "t", "pca")
        path = s.layout.map_path("t", "pca")
        path.write_bytes(b"PAR1 not really")
        with pytest.warns(StoreWarning, match="cannot be read"):
            assert s.map("t", "pca") is None
        with pytest.warns(StoreWarning):
            assert map_for(s, "t", "pca").num_rows == 120
        assert s.map("t", "pca").num_rows == 120


def test_save_map_refuses_mismatched_coordinates(clustered):
    with store.open(clustered) as s:
        with pytest.raises(UserError, match="one \\(x, y\\) per key"):
            s.save_map("t", "pca", ["a", "b"], np.zeros((3, 2)))
        with pytest.raises(UserError, match="finite"):
            s.save_map("t", "pca", ["a"], np.array([[np.nan, 0.0]]))
        with pytest.raises(UserError, match="invalid map method"):
            s.save_map("t", "../../etc", ["a"], np.zeros((1, 2)))
        assert not s.layout.maps_dir("t").exists() or not list(s.layout.maps_dir("t").iterdir())


def test_unknown_method_missing_table_and_key_table_are_clear_errors(clustered):
    with store.open(clustered) as s:
        keys = s.sql("SELECT key FROM t ORDER BY key").column("key").to_pylist()
    write_key_table(clustered, TableEntry(name="t_dups", model="m", pretrained="p", preprocess="x", dim=0,
                                          kind="duplicates", parent="t"),
                    pa.table({"key": keys, "dup_group": keys, "score": [1.0] * len(keys)}))
    with store.open(clustered) as s:
        with pytest.raises(MapInputError, match="unknown map method 'tsne'"):
            map_for(s, "t", "tsne")
        with pytest.raises(UserError, match="no table 'nope'"):
            map_for(s, "nope", "pca")
        with pytest.raises(MapInputError, match="no embeddings to map"):
            map_for(s, "t_dups", "pca")


def test_cli_map_prints_rows_and_time_and_reuses(clustered):
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "artlens", "map", "--store", str(clustered), "--table", "t"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "120 rows" in done.stdout and " s " in done.stdout
    bad = subprocess.run([*cmd[:-1], "missing"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "no table 'missing'" in bad.stderr
    helped = subprocess.run([sys.executable, "-m", "artlens", "map", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert all(flag in helped.stdout for flag in ("--store", "--table", "--method", "--seed", "--recompute"))


@pytest.mark.slow
@pytest.mark.xdist_group("umap")  # one worker: numba compiles UMAP once (~30 s), the other loads its cache
def test_umap_on_a_small_table(clustered):
    with store.open(clustered) as s:
        first = project(s, "t", "umap", seed=0)
        second = project(s, "t", "umap", seed=0)
        assert first.num_rows == 120 and first.column_names == ["key", "x", "y"]
        assert first.column("x").to_pylist() == second.column("x").to_pylist()
        assert map_info(s.map("t", "umap"))["method"] == "umap"
        labels = dict(zip(*s.sql("SELECT key, cluster FROM t").to_pydict().values()))
    xy = np.column_stack([first.column("x").to_numpy(), first.column("y").to_numpy()])
    side = np.array([labels[k] == "a" for k in first.column("key").to_pylist()])
    gap = np.linalg.norm(xy[side].mean(0) - xy[~side].mean(0))
    spread = max(xy[side].std(0).max(), xy[~side].std(0).max())
    assert gap > 2 * spread  # the planted clusters land apart
