"""Extraction and shard identity (issue 17, points 2, 3 and 8): metadata named like the store's columns never
replaces them; the same shards under another path (a copy, a move, a symlink), or in a store named by the
previous shard ids, are not embedded again; keys already in the table become `duplicate_key` failures; a part
that cannot be read is embedded again."""
import json
import os
import shutil

import numpy as np
import pytest

import imagefactory as f
from artlens import store
from artlens.cli.main import main
from artlens.store.layout import StoreLayout, legacy_shard_id
from conftest import TINY_MODEL, write_tar

ODD_META = {"Embedding": [1.0, 0.0, 0.0], "EMBEDDING": "upper", "KEY": "k-upper", "Shard": "shard-meta",
            "": "empty", "style": "lower", "Style": "capital", "key": "k-lower", "meta_key": "literal"}
#: where each field of ODD_META is found (the rule of store/parts.py `metadata_columns`, README)
COLUMNS = {"Embedding": "meta_Embedding_2", "EMBEDDING": "meta_EMBEDDING", "KEY": "meta_KEY_2",
           "Shard": "meta_Shard", "": "meta_", "style": "style", "Style": "Style_2", "key": "meta_key",
           "meta_key": "meta_meta_key"}


def _images(n, shard_no=0):
    return [(f"s{shard_no}_{i}", f.jpeg(64 + 8 * i, 48, color=(40 * shard_no, 50 * i, 90))) for i in range(n)]


def _shards(root, n_shards=3, per_shard=3):
    for s in range(n_shards):
        write_tar(root / f"{s:05d}.tar", [(f"{k}.jpg", data) for k, data in _images(per_shard, s)])
    return root


def _rows(root, table="t"):
    with store.open(root) as s:
        rows = s.sql(f"SELECT key, shard, embedding FROM {table} ORDER BY key").to_pylist()
        failures = s.sql("SELECT * FROM failures ORDER BY key").to_pylist()
    return rows, failures


def test_metadata_named_like_the_stores_columns_keeps_the_real_embeddings(tmp_path, extract):
    images = _images(4)
    odd = write_tar(tmp_path / "odd" / "00000.tar",
                    [m for k, data in images for m in ((f"{k}.jpg", data), (f"{k}.json", json.dumps(ODD_META).encode()))])
    clean = write_tar(tmp_path / "clean" / "00000.tar", [(f"{k}.jpg", data) for k, data in images])
    assert extract(odd.parent, store=tmp_path / "odd-store").exit_code == 0
    assert extract(clean.parent, store=tmp_path / "clean-store").exit_code == 0
    with store.open(tmp_path / "odd-store") as s:
        got = s.sql("SELECT * FROM t ORDER BY key").to_pylist()
        by_sql = s.sql("SELECT key, embedding FROM t ORDER BY key").to_pylist()
        scores = s.sql("SELECT cosine(a.embedding, b.embedding) AS c FROM t a, t b WHERE a.key < b.key")
    with store.open(tmp_path / "clean-store") as s:
        want = s.sql("SELECT key, embedding FROM t ORDER BY key").to_pylist()
    assert [r["key"] for r in by_sql] == [r["key"] for r in want] == [k for k, _ in images]
    np.testing.assert_allclose([r["embedding"] for r in by_sql], [r["embedding"] for r in want], atol=1e-6)
    assert max(scores.column("c").to_pylist()) < 0.99999  # real vectors, not the metadata's constant one
    for row in got:
        for field, column in COLUMNS.items():
            expected = json.dumps(ODD_META[field]) if field == "Embedding" else ODD_META[field]
            assert row[column] == expected, (field, column)
        assert row["shard"] == str(odd) and row["key"].startswith("s0_")


def test_the_same_shards_copied_moved_or_through_a_symlink_are_not_embedded_again(tmp_path, extract):
    shards = _shards(tmp_path / "a")
    first = extract(shards)
    assert (first.images, first.exit_code, first.table_rows) == (9, 0, 9)
    before, _ = _rows(tmp_path / "store")
    shutil.copytree(shards, tmp_path / "copy")
    (tmp_path / "link").symlink_to(shards, target_is_directory=True)
    for again in (tmp_path / "copy", tmp_path / "link"):
        summary = extract(again)
        assert (summary.images, summary.shards_skipped, summary.exit_code, summary.table_rows) == (0, 3, 0, 9), again
    os.rename(shards, tmp_path / "moved")
    summary = extract(tmp_path / "moved")
    assert (summary.images, summary.shards_skipped, summary.exit_code, summary.table_rows) == (0, 3, 0, 9)
    after, failures = _rows(tmp_path / "store")
    assert after == before and failures == []

    listing = tmp_path / "both.txt"  # one run given the same shard twice: embedded once
    listing.write_text(f"{tmp_path / 'moved' / '00000.tar'}\n{tmp_path / 'copy' / '00000.tar'}\n")
    twice = extract(listing, store=tmp_path / "fresh")
    assert (twice.images, twice.exit_code, twice.table_rows) == (3, 0, 3)


def test_keys_already_in_the_table_become_duplicate_key_failures_naming_both_shards(tmp_path, extract):
    shards = _shards(tmp_path / "a")
    extract(shards)
    images = dict(_images(3, 1))  # s1_0 .. s1_2 are rows of 00001.tar already
    extra = write_tar(tmp_path / "b" / "extra.tar",
                      [("s1_0.jpg", images["s1_0"]), ("new_0.jpg", f.png()), ("s1_2.jpg", images["s1_2"]),
                       ("new_1.jpg", f.jpeg(color=(1, 2, 3))), ("new_0.jpg", f.jpeg())])  # new_0 twice in one tar
    summary = extract(extra.parent)
    assert (summary.exit_code, summary.images, summary.failures, summary.table_rows) == (3, 2, 3, 11)
    rows, failures = _rows(tmp_path / "store")
    assert len({r["key"] for r in rows}) == len(rows) == 11
    assert {r["key"]: r["shard"] for r in rows}["s1_0"] == str(shards / "00001.tar")
    dup = [r for r in failures if r["stage"] == "duplicate_key"]
    assert [r["key"] for r in dup] == ["s1_0", "s1_2"]
    for r in dup:
        assert r["shard"] == str(extra) and str(shards / "00001.tar") in r["error"] and str(extra) in r["error"]
    assert [(r["key"], r["stage"]) for r in failures if r["stage"] != "duplicate_key"] == [("new_0", "read")]
    again = extract(extra.parent)  # committed (with its failures): resumed, still exit 3 for the failures held
    assert (again.images, again.shards_skipped, again.table_rows) == (0, 1, 11)


def test_a_key_in_two_shards_of_one_run_is_added_once(tmp_path, extract):
    """The keys a run commits count at once: the later shard's row with the same key is a duplicate_key failure
    (not only keys of earlier runs)."""
    shards = tmp_path / "s"
    write_tar(shards / "00000.tar", [("k.jpg", f.jpeg()), ("a.png", f.png())])
    write_tar(shards / "00001.tar", [("k.jpg", f.jpeg(color=(1, 2, 3)))])
    summary = extract(shards)
    assert (summary.exit_code, summary.failures, summary.table_rows) == (3, 1, 2)
    rows, failures = _rows(tmp_path / "store")
    first, second = str(shards / "00000.tar"), str(shards / "00001.tar")
    assert [(r["key"], r["shard"]) for r in rows] == [("a", first), ("k", first)]
    assert [(r["key"], r["shard"], r["stage"]) for r in failures] == [("k", second, "duplicate_key")]


def test_a_store_named_by_the_previous_shard_ids_resumes(tmp_path, extract):
    shards = _shards(tmp_path / "a")
    extract(shards)
    layout = StoreLayout.at(tmp_path / "store")
    for n in range(3):  # as the previous version named the parts: by the hash of the shard's URL
        url = str(shards / f"{n:05d}.tar")
        os.rename(layout.part_path("t", url), layout.table_dir("t") / f"part-{legacy_shard_id(url)}.parquet")
    summary = extract(shards)
    assert (summary.images, summary.shards_skipped, summary.exit_code, summary.table_rows) == (0, 3, 0, 9)
    assert len(layout.parts("t")) == 3


def test_a_truncated_part_is_embedded_again(tmp_path, extract):
    shards = _shards(tmp_path / "a")
    extract(shards)
    before, _ = _rows(tmp_path / "store")
    layout = StoreLayout.at(tmp_path / "store")
    part = layout.part_path("t", str(shards / "00001.tar"))
    data = part.read_bytes()
    part.write_bytes(data[: len(data) - 100])
    summary = extract(shards)
    assert (summary.images, summary.shards_committed, summary.exit_code, summary.table_rows) == (3, 1, 0, 9)
    after, failures = _rows(tmp_path / "store")
    assert [r["key"] for r in after] == [r["key"] for r in before] and failures == []
    np.testing.assert_allclose([r["embedding"] for r in after], [r["embedding"] for r in before], atol=1e-6)
    assert [p.read_bytes() for p in layout.quarantine_dir().rglob(part.name)] == [data[: len(data) - 100]]


def test_the_cli_exits_0_for_copied_shards_and_3_for_duplicate_keys(tmp_path, capsys):
    shards = _shards(tmp_path / "a", n_shards=2, per_shard=2)
    base = ["extract", "--store", str(tmp_path / "store"), "--table", "t", "--model", TINY_MODEL,
            "--pretrained", "random", "--device", "cpu", "--workers", "0", "--no-progress"]
    assert main(base + ["--shards", str(shards)]) == 0
    shutil.copytree(shards, tmp_path / "copy")
    assert main(base + ["--shards", str(tmp_path / "copy")]) == 0
    write_tar(tmp_path / "b" / "other.tar", [("s0_1.jpg", f.jpeg())])
    assert main(base + ["--shards", str(tmp_path / "b")]) == 3
    rows, failures = _rows(tmp_path / "store")
    assert len(rows) == 4 and [r["stage"] for r in failures] == ["duplicate_key"]


@pytest.mark.slow
def test_devices_processes_resume_old_ids_and_refuse_duplicate_keys(tmp_path, extract):
    from artlens.pipeline.extract.config import ExtractConfig
    from artlens.pipeline.extract.engines.devices import run_on_devices
    from artlens.pipeline.models.spec import ModelSpec

    shards = _shards(tmp_path / "a", n_shards=2)
    extract(shards)
    layout = StoreLayout.at(tmp_path / "store")
    url = str(shards / "00000.tar")
    os.rename(layout.part_path("t", url), layout.table_dir("t") / f"part-{legacy_shard_id(url)}.parquet")
    spec = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)

    def run(spec_path):
        return run_on_devices(ExtractConfig(shards=str(spec_path), store=str(tmp_path / "store"), table="t",
                                            model=spec, workers=0, progress=False, devices=("cpu", "cpu")))

    resumed = run(shards)  # nothing to do: no process is started
    assert (resumed.shards_skipped, resumed.exit_code, resumed.table_rows) == (2, 0, 6)
    images = dict(_images(3, 0))
    write_tar(tmp_path / "b" / "x.tar", [("s0_0.jpg", images["s0_0"]), ("fresh.jpg", f.png())])
    write_tar(tmp_path / "b" / "y.tar", [("s0_1.jpg", images["s0_1"])])
    summary = run(tmp_path / "b")
    assert (summary.exit_code, summary.failures, summary.table_rows) == (3, 2, 7)
    rows, failures = _rows(tmp_path / "store")
    assert len({r["key"] for r in rows}) == 7
    assert sorted(r["key"] for r in failures if r["stage"] == "duplicate_key") == ["s0_0", "s0_1"]
