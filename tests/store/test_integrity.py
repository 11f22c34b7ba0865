"""Damaged stores: a part deleted or truncated, a failures part truncated, a catalog empty, random, corrupt or
deleted. Readers keep what can be read, say what is wrong in one line, and `repair` rebuilds the catalog from
the parts (moving unreadable files aside, never deleting them). Every damage is done to real files here."""
import hashlib
import os
import subprocess
import sys
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from artlens import store
from artlens.pipeline.importer import ImportConfig, run_import
from artlens.store.catalog import Catalog, CatalogDamaged, CatalogError, TableEntry
from artlens.store.layout import StoreLayout
from artlens.store.parts import rows_to_table, write_atomic
from artlens.store.query import StoreWarning
from artlens.store.repair import RepairConfig, repair
from artlens.store.writer import TableWriter

IDENTITY = dict(model="tiny (config x.json sha256:ab12)", model_ref="/models/x.json", pretrained="random:seed=3",
                checkpoint_sha256="f" * 64, preprocess="resize 32, crop 32, Normalize", artlens_version="9.9")


def vectors(n, dim, seed):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def write_table(root, name, shards, dim=4, failures_in=(), **fields):
    """A table of len(shards) parts, 2 rows each (keys `<shard>-0`, `<shard>-1`); one failure per shard in
    `failures_in`."""
    writer = TableWriter(root, TableEntry(name=name, dim=dim, **{**IDENTITY, **fields}))
    for i, shard in enumerate(shards):
        rows = [{"key": f"{shard}-{j}", "shard": shard, "style": f"s{j}"} for j in range(2)]
        bad = [{"key": f"{shard}-bad", "shard": shard, "stage": "decode", "error": "cut"}] if shard in failures_in else []
        writer.commit(shard, rows, vectors(2, dim, i), bad)
    return writer.finish()


@pytest.fixture
def two_tables(tmp_path):
    """`art` (3 parts, 6 rows, a failure in shard b) and `other` (1 part, 2 rows, dim 8, a text table)."""
    root = tmp_path / "store"
    write_table(root, "art", ["a", "b", "c"], failures_in=("b",))
    write_table(root, "other", ["x"], dim=8, kind="text")
    return root


def truncate(path):
    with open(path, "r+b") as fh:  # real bytes cut: the footer and its magic bytes are gone
        fh.truncate(os.path.getsize(path) // 2)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files(root):
    """Every part and failures part of the store, path relative to the root → sha256."""
    return {str(p.relative_to(root)): digest(p) for top in ("tables", "failures")
            for p in sorted((root / top).rglob("*.parquet"))}


def count(s, table):
    return s.sql(f"SELECT count(*) AS n FROM {table}").to_pylist()[0]["n"]


def store_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, StoreWarning)]


# ------------------------------------------------------------------ a damaged part (point 8)
def test_a_truncated_part_fails_its_table_only_naming_the_part_and_the_repair(two_tables):
    part = StoreLayout.at(two_tables).parts("art")[1]
    truncate(part)
    with store.open(two_tables) as s:
        assert s.sql("SELECT 1 AS one").to_pylist() == [{"one": 1}]
        assert count(s, "other") == 2
        assert s.sql("SELECT key FROM failures").to_pylist() == [{"key": "b-bad"}]
        assert s.sql("SELECT count(*) AS n FROM catalog").to_pylist() == [{"n": 2}]
        for query in ("SELECT count(*) FROM art", "SELECT key FROM art", "SELECT * FROM art WHERE key = 'a-0'"):
            with pytest.raises(store.StoreError) as exc:
                s.sql(query)
            message = str(exc.value)
            assert str(part) in message and "damaged" in message
            assert f"artlens repair --store {two_tables}" in message and "\n" not in message
        assert list(s.damaged()) == ["art"]
        with pytest.raises(store.StoreError, match="damaged"):  # the index path says it too, not pyarrow
            s.index("art")


def test_a_truncated_failures_part_fails_the_failures_view_only(two_tables):
    failures_part = StoreLayout.at(two_tables).failure_parts("art")[0]
    truncate(failures_part)
    with store.open(two_tables) as s:
        assert s.sql("SELECT 1 AS one").to_pylist() == [{"one": 1}]
        assert count(s, "art") == 6 and count(s, "other") == 2
        with pytest.raises(store.StoreError) as exc:
            s.sql("SELECT * FROM failures")
        assert str(failures_part) in str(exc.value) and "artlens repair --store" in str(exc.value)
        assert "failures part" in str(exc.value)


def test_an_import_into_another_table_works_beside_a_damaged_part(two_tables, tmp_path):
    truncate(StoreLayout.at(two_tables).parts("art")[0])
    source = tmp_path / "vectors.parquet"
    pq.write_table(pa.table({"key": ["p", "q", "r"], "vec": vectors(3, 4, 9).tolist()}), source)
    summary = run_import(ImportConfig(source=str(source), store=str(two_tables), table="imported",
                                      embedding_column="vec"))
    assert (summary.exit_code, summary.table_rows) == (0, 3)
    with store.open(two_tables) as s:
        assert count(s, "imported") == 3
        assert "art" in s.damaged()


# ------------------------------------------------------------------ a deleted part (point 5)
def test_a_deleted_part_warns_naming_the_table_both_counts_and_the_repair(two_tables):
    StoreLayout.at(two_tables).parts("art")[0].unlink()
    with pytest.warns(StoreWarning) as record:
        s = store.open(two_tables)
    with s:
        assert count(s, "art") == 4  # what is there is still read
    (message,) = store_warnings(record)
    assert "'art'" in message and "6 rows in 3 parts" in message and "4 rows in 2 parts" in message
    assert f"artlens repair --store {two_tables}" in message


def test_no_warning_when_parts_agree_or_a_run_is_adding_parts(two_tables):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        store.open(two_tables).close()
        writer = TableWriter.reopen(two_tables, "art")  # a run in progress: a part more than counted
        writer.commit("d", [{"key": "d-0", "shard": "d"}], vectors(1, 4, 5), [])
        with store.open(two_tables) as s:
            assert count(s, "art") == 7
    assert store_warnings(record) == []


def test_a_catalog_without_part_counts_still_warns_of_missing_rows(two_tables):
    catalog = Catalog(StoreLayout.at(two_tables).catalog_path)
    entry = catalog.get("art")
    entry.parts = 0  # as an older artlens wrote it
    catalog.put(entry)
    StoreLayout.at(two_tables).parts("art")[2].unlink()
    with pytest.warns(StoreWarning, match=r"counts 6 rows but .* holds 4 rows in 2 parts"):
        store.open(two_tables).close()


# ------------------------------------------------------------------ a damaged catalog (point 9)
def test_an_empty_catalog_is_damaged_not_locked(two_tables):
    StoreLayout.at(two_tables).catalog_path.write_bytes(b"")
    with pytest.raises(CatalogDamaged) as exc:  # at once: an empty file is no lock to wait for
        store.open(two_tables)
    message = str(exc.value)
    assert "damaged" in message and "empty (0 bytes)" in message and "locked" not in message
    assert f"artlens repair --store {two_tables}" in message


def test_a_catalog_of_random_bytes_is_damaged(two_tables):
    path = StoreLayout.at(two_tables).catalog_path
    path.write_bytes(np.random.default_rng(0).bytes(20_000))
    with pytest.raises(CatalogDamaged, match="not a DuckDB database file.*artlens repair --store"):
        Catalog(path).entries()
    with pytest.raises(CatalogDamaged, match="damaged"):  # writers too
        TableWriter(two_tables, TableEntry(name="new", dim=4))


def test_a_catalog_with_corrupt_blocks_is_damaged(two_tables):
    path = StoreLayout.at(two_tables).catalog_path
    data = path.read_bytes()
    path.write_bytes(data[:12288] + np.random.default_rng(1).bytes(len(data) - 12288))  # header kept
    with pytest.raises(CatalogDamaged) as exc:
        store.open(two_tables)
    assert "DuckDB cannot read it" in str(exc.value) and "locked" not in str(exc.value)


def test_a_catalog_held_by_another_process_still_says_locked(two_tables):
    path = StoreLayout.at(two_tables).catalog_path
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); sys.stdin.read()"),
        str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(CatalogError, match="stayed locked") as exc:
            Catalog(path, timeout_s=0.3).entries()
        assert not isinstance(exc.value, CatalogDamaged)
    finally:
        holder.communicate(b"")


def test_a_deleted_catalog_says_to_run_repair(two_tables):
    StoreLayout.at(two_tables).catalog_path.unlink()
    with pytest.warns(StoreWarning, match="'art', 'other' have parts .* catalog .* is missing.*artlens repair"):
        s = store.open(two_tables)
    with s:
        assert s.sql("SELECT 1 AS one").to_pylist() == [{"one": 1}]
        with pytest.raises(store.StoreError, match="table 'art' has parts .* no catalog entry.*artlens repair"):
            s.sql("SELECT * FROM art")
    with pytest.raises(CatalogError, match="artlens repair --store .*or use `overwrite`"):
        TableWriter(two_tables, TableEntry(name="art", dim=4, **IDENTITY))  # not only --overwrite


# ------------------------------------------------------------------ repair
def test_repair_rebuilds_a_deleted_catalog_from_the_parts_untouched(two_tables):
    before_files = files(two_tables)
    with store.open(two_tables) as s:
        before = {e.name: e for e in map(s.entry, s.tables())}
    StoreLayout.at(two_tables).catalog_path.unlink()
    report = repair(RepairConfig(store=str(two_tables)))
    text = "\n".join(report.lines())
    assert "was missing: rebuilt" in text and "table art: 6 rows in 3 parts, 1 failure" in text
    assert files(two_tables) == before_files  # the parts untouched
    assert not (two_tables / "quarantine").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        s = store.open(two_tables)
    with s:
        assert s.tables() == ["art", "other"]
        for name, old in before.items():
            new = s.entry(name)
            assert new.identity() == old.identity() and new.kind == old.kind and new.model_ref == old.model_ref
            assert (new.rows, new.parts, new.failures, new.created) == (old.rows, old.parts, old.failures,
                                                                         old.created)
        assert count(s, "art") == 6 and count(s, "other") == 2
        assert s.sql("SELECT typeof(embedding) AS t FROM other LIMIT 1").to_pylist() == [{"t": "FLOAT[8]"}]
        assert s.sql("SELECT key FROM failures").to_pylist() == [{"key": "b-bad"}]
    TableWriter(two_tables, TableEntry(name="art", dim=4, **IDENTITY))  # the same settings may extend it


def test_repair_moves_a_damaged_catalog_aside_and_rebuilds_it(two_tables):
    path = StoreLayout.at(two_tables).catalog_path
    path.write_bytes(b"")
    report = repair(str(two_tables))
    (moved,) = report.quarantined
    assert moved[0] == path and moved[1].parent.parent == two_tables / "quarantine"
    assert moved[1].read_bytes() == b"" and "empty" in "\n".join(report.lines())
    with store.open(two_tables) as s:
        assert s.tables() == ["art", "other"] and s.entry("other").kind == "text" and count(s, "art") == 6


def test_repair_quarantines_unreadable_parts_and_recounts(two_tables):
    layout = StoreLayout.at(two_tables)
    part, failures_part = layout.parts("art")[0], layout.failure_parts("art")[0]
    truncate(part)
    truncate(failures_part)
    cut = {part: part.read_bytes(), failures_part: failures_part.read_bytes()}
    report = repair(str(two_tables))
    assert {src for src, _, _ in report.quarantined} == set(cut)
    for src, dst, why in report.quarantined:
        assert not src.exists() and dst.read_bytes() == cut[src] and "unreadable" in why
        assert dst.relative_to(dst.parents[2]) == src.relative_to(two_tables)  # quarantine/<time>/tables/art/..
    assert "recounted; the catalog had 6 rows in 3 parts, 1 failure" in "\n".join(report.lines())
    with warnings.catch_warnings():
        warnings.simplefilter("error", StoreWarning)
        s = store.open(two_tables)
    with s:
        assert s.damaged() == {} and count(s, "art") == 4 and count(s, "failures") == 0
        assert (s.entry("art").rows, s.entry("art").parts, s.entry("art").failures) == (4, 2, 0)


def test_repair_of_a_sound_store_changes_nothing(two_tables):
    catalog = Catalog(StoreLayout.at(two_tables).catalog_path)
    before, before_files = catalog.entries(), files(two_tables)
    lines = repair(str(two_tables)).lines()
    assert lines[1:] == ["  table art: 6 rows in 3 parts, 1 failure (as the catalog had)",
                         "  table other: 2 rows in 1 part, 0 failures (as the catalog had)"]
    assert catalog.entries() == before and files(two_tables) == before_files


def test_repair_of_parts_without_a_description_recovers_what_it_can_and_warns(tmp_path):
    root = tmp_path / "store"
    layout = StoreLayout.at(root)
    for shard in ("a", "b"):  # parts as an older artlens wrote them: no `artlens` metadata
        table, _ = rows_to_table([{"key": f"{shard}0", "shard": shard}], vectors(1, 6, 0), 6)
        write_atomic(table, layout.part_path("old", shard))
    with pytest.warns(StoreWarning, match="'old'.*lacks kind, model, model_ref, pretrained, checkpoint_sha256"):
        repair(str(root))
    with store.open(root) as s:
        entry = s.entry("old")
        assert (entry.dim, entry.rows, entry.parts, entry.model) == (6, 2, 2, "")
        assert s.sql("SELECT typeof(embedding) AS t FROM old LIMIT 1").to_pylist() == [{"t": "FLOAT[6]"}]


def test_repair_refuses_a_missing_store(tmp_path):
    with pytest.raises(store.StoreError, match="no store at"):
        repair(str(tmp_path / "nowhere"))
