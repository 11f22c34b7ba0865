"""Store identity rules (issue 17, points 2, 3 and 8): metadata column names as DuckDB compares them, shard ids
that survive a move, parts named by the previous ids, and parts that cannot be read."""
import itertools
import os
import shutil

import numpy as np
import pyarrow.parquet as pq
import pytest

from artlens import store
from artlens.store.catalog import CatalogError, TableEntry
from artlens.store.layout import StoreLayout, legacy_shard_id, shard_id
from artlens.store.parts import fold, metadata_columns, rows_to_table
from artlens.store.writer import TableWriter
from conftest import write_tar

ODD_FIELDS = ["Embedding", "EMBEDDING", "KEY", "Shard", "", "style", "Style", "key", "meta_key", "Width", "É", "é"]
EXPECTED = {"Embedding": "meta_Embedding_2", "EMBEDDING": "meta_EMBEDDING", "KEY": "meta_KEY_2",
            "Shard": "meta_Shard", "": "meta_", "style": "style", "Style": "Style_2", "key": "meta_key",
            "meta_key": "meta_meta_key", "Width": "meta_Width", "É": "É", "é": "é"}


def test_metadata_names_follow_one_rule_whatever_the_field_order():
    assert metadata_columns(ODD_FIELDS) == EXPECTED
    for order in itertools.islice(itertools.permutations(ODD_FIELDS), 0, 5000, 97):
        assert metadata_columns(order) == EXPECTED
    columns = list(EXPECTED.values())
    assert len({fold(c) for c in columns}) == len(columns)  # DuckDB tells every column apart
    assert metadata_columns(["style", "style_2", "Style"])["Style"] == "Style_3"  # the first free suffix
    assert metadata_columns(["width", "Width"], keep={"width"}) == {"width": "width", "Width": "meta_Width"}
    assert metadata_columns(["Title", "year"]) == {"Title": "Title", "year": "year"}  # ordinary names as given


def test_part_columns_that_differ_only_in_case_merge_and_an_embedding_field_is_refused():
    rows = [{"key": "a", "shard": "s", "style": "x"}, {"key": "b", "shard": "s", "Style": "y"}]
    part, _ = rows_to_table(rows, np.eye(2, dtype=np.float32), 2)
    assert part.column_names == ["key", "shard", "style", "embedding"]
    assert part["style"].to_pylist() == ["x", "y"]
    with pytest.raises(ValueError, match="cannot tell apart"):
        rows_to_table([{"key": "a", "shard": "s", "style": 1, "STYLE": 2}], np.eye(1, dtype=np.float32), 1)
    with pytest.raises(ValueError, match="would hide"):
        rows_to_table([{"key": "a", "shard": "s", "Embedding": [1.0]}], np.eye(1, dtype=np.float32), 1)


def _tar(path, n=3, seed=0):
    return write_tar(path, [(f"k{seed}_{i}.txt", bytes([seed, i]) * 40_000) for i in range(n)])


def test_shard_id_survives_a_copy_a_move_and_symlinks_but_not_other_content(tmp_path):
    original = _tar(tmp_path / "a" / "00000.tar")
    ident = shard_id(str(original))
    copy = tmp_path / "b" / "00000.tar"
    copy.parent.mkdir()
    shutil.copy(original, copy)
    (tmp_path / "link").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "renamed-link.tar").symlink_to(original)
    for other in (copy, tmp_path / "link" / "00000.tar", tmp_path / "renamed-link.tar"):
        assert shard_id(str(other)) == ident, other
    moved = tmp_path / "moved"
    os.rename(tmp_path / "b", moved)
    assert shard_id(str(moved / "00000.tar")) == ident
    assert shard_id(f"file://{original}") == ident

    same_size = _tar(tmp_path / "c" / "00000.tar", seed=1)  # same name and size, other content
    assert same_size.stat().st_size == original.stat().st_size and shard_id(str(same_size)) != ident
    assert shard_id(str(copy.parent / "x" / "00000.tar")) == legacy_shard_id(str(copy.parent / "x" / "00000.tar"))
    for url in ("s3://bucket/shards/00000.tar", "prompts.yaml", str(tmp_path / "a")):
        assert shard_id(url) == legacy_shard_id(url)

    _tar(original, n=4)  # rewritten in place: another shard (the cached id is not reused)
    assert shard_id(str(original)) != ident


def _writer(root, dim=2):
    return TableWriter(root, TableEntry(name="t", model="m", pretrained="p", preprocess="x", dim=dim))


def test_a_part_named_by_the_previous_id_counts_as_done_and_a_damaged_part_does_not(tmp_path):
    shard = str(_tar(tmp_path / "shards" / "00000.tar"))
    root = tmp_path / "store"
    writer = _writer(root)
    layout = StoreLayout.at(root)
    rows = [{"key": "a", "shard": shard}, {"key": "b", "shard": shard}]
    writer.commit(shard, rows, np.eye(2, dtype=np.float32), [])
    part = layout.part_path("t", shard)
    assert part.name == f"part-{shard_id(shard)}.parquet" and writer.is_done(shard)

    legacy = layout.table_dir("t") / f"part-{legacy_shard_id(shard)}.parquet"  # a store of the previous naming
    os.rename(part, legacy)
    assert writer.is_done(shard) and layout.part_paths("t", shard) == [part, legacy]

    data = legacy.read_bytes()
    legacy.write_bytes(data[: len(data) // 2])  # truncated
    assert not writer.is_done(shard)
    old_failures = layout.failures_dir("t") / f"part-{legacy_shard_id(shard)}.parquet"
    writer.record_failures(shard, [{"key": None, "shard": shard, "stage": "read", "error": "x"}])
    os.rename(layout.failures_path("t", shard), old_failures)

    writer.commit(shard, rows, np.eye(2, dtype=np.float32), [])  # the shard redone
    assert writer.is_done(shard) and layout.parts("t") == [part]
    assert not old_failures.exists()  # the failures of the old attempt went with it
    kept = list(layout.quarantine_dir().rglob(legacy.name))
    assert len(kept) == 1 and kept[0].read_bytes() == data[: len(data) // 2]
    writer.finish()
    with store.open(root) as s:
        assert s.sql("SELECT count(*) AS n FROM t").to_pylist() == [{"n": 2}]


def test_committed_keys_are_read_once_then_only_new_parts(tmp_path):
    root = tmp_path / "store"
    first, second = _writer(root), _writer(root)
    first.commit("s1", [{"key": "a", "shard": "s1"}], np.eye(1, 2, dtype=np.float32), [])
    assert second.committed_keys() == {"a": "s1"}
    first.commit("s2", [{"key": "b", "shard": "s2"}], np.eye(1, 2, dtype=np.float32), [])  # another process
    second.commit("s3", [{"key": "c", "shard": "s3"}], np.eye(1, 2, dtype=np.float32), [])
    assert second.committed_keys() == {"a": "s1", "b": "s2", "c": "s3"}
    broken = StoreLayout.at(root).table_dir("t") / "part-broken.parquet"
    broken.write_bytes(b"PAR1 not a part")
    assert second.committed_keys() == {"a": "s1", "b": "s2", "c": "s3"}  # unreadable parts hold no keys
    assert pq.read_metadata(StoreLayout.at(root).part_path("t", "s3")).num_rows == 1


def test_a_table_named_like_another_but_for_case_is_refused(tmp_path):
    """SQL names ignore case: a table `Art` beside `art` would be the same view, and one would hide the other."""
    writer = TableWriter(tmp_path, TableEntry(name="art", model="m", dim=4))
    writer.commit("s", [{"key": "a", "shard": "s"}], np.ones((1, 4), np.float32), [])
    writer.finish()
    with pytest.raises(CatalogError, match="'Art' differs from the store's table 'art' only in case"):
        TableWriter(tmp_path, TableEntry(name="Art", model="m", dim=4))
    with store.open(tmp_path) as s:
        assert s.tables() == ["art"] and s.sql("SELECT key FROM art").column("key").to_pylist() == ["a"]
