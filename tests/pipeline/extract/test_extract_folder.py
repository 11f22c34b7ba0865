"""`artlens extract FOLDER`: a folder of images read in place as virtual shards (pipeline/shards/folder.py).

The same rows as `artlens shards` + `artlens extract` of the folder (keys, embeddings, metadata); bad files are
failure rows of their chunk; resume skips unchanged chunks and redoes only the chunk of a changed file; a run
SIGKILLed mid-way and resumed gives the table of an uninterrupted run once. Real components: the tiny model,
real files, Parquet, DuckDB, an `artlens` process."""
import os
import signal
import subprocess

import numpy as np
import pytest

import faultkit
import imagefactory as f
from artlens import store
from artlens.cli.main import main
from artlens.errors import UserError
from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.shards.folder import FolderSource, chunk_id
from artlens.pipeline.shards.write import write_shards
from artlens.store.layout import StoreLayout, shard_id
from conftest import REPO, TINY_MODEL, write_tar

CLI_MODEL = ["--model", TINY_MODEL, "--pretrained", "random", "--device", "cpu", "--workers", "0", "--no-progress"]


def _folder(root, n=7):
    """n paintings in two sub-folders (one name with dots and spaces, two files whose keys collide) and a CSV
    with a numeric rating joined by relative path or by file name."""
    names = [f"{'Baroque' if i % 2 else 'Cubism'}/p{i}.jpg" for i in range(n - 2)]
    names += ["odd name.v2.png", "odd_name_v2.jpg"]  # both key 'odd_name_v2': the second is 'odd_name_v2_1'
    for i, name in enumerate(names):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.png(64 + 8 * i, 48, color=(30 * i, 90, 200)) if name.endswith(".png")
                         else f.jpeg(64 + 8 * i, 48, color=(30 * i, 90, 20)))
    (root / "notes.txt").write_text("not an image")  # not an image suffix: not read, as `artlens shards` does
    lines = ["file_name,rating,style"] + [f"{name if i % 3 else name.rsplit('/', 1)[-1]},{i + 0.5},s{i}"
                                          for i, name in enumerate(names)]
    meta = root.parent / "meta.csv"
    meta.write_text("\n".join(lines) + "\n")
    return root, meta, names


def _rows(root, table="t"):
    with store.open(root) as s:
        got = s.sql(f"SELECT * FROM {table}")
        count, distinct = s.sql(f"SELECT count(*), count(DISTINCT key) FROM {table}").to_pylist()[0].values()
    assert count == distinct  # every key once
    return {r["key"]: r for r in got.to_pylist()}


def _failures(root):
    with store.open(root) as s:
        return sorted((r["key"], r["stage"]) for r in s.sql("SELECT key, stage FROM failures").to_pylist())


def _parts(root):
    return {p.name: p.stat().st_mtime_ns for p in (root / "tables" / "t").glob("part-*.parquet")}


def test_a_folder_gives_the_rows_of_shards_made_of_it(tmp_path, extract):
    folder, meta, names = _folder(tmp_path / "images")
    write_shards(ShardsConfig(source=str(folder), out=str(tmp_path / "shards"), metadata=str(meta), shard_size=3,
                              progress=False))
    via_shards = extract(tmp_path / "shards", store=tmp_path / "a")
    direct = extract(folder, store=tmp_path / "b", metadata=str(meta), shard_size=3)
    assert (direct.images, direct.failures, direct.exit_code, direct.shards) == (len(names), 0, 0, 3)
    assert via_shards.images == len(names)
    a, b = _rows(tmp_path / "a"), _rows(tmp_path / "b")
    assert set(a) == set(b) and "odd_name_v2_1" in b and "Baroque__p1" in b
    for key, row in b.items():
        other = a[key]
        assert [row[c] for c in ("source_path", "rating", "style", "width", "height")] == \
               [other[c] for c in ("source_path", "rating", "style", "width", "height")]
        np.testing.assert_allclose(row["embedding"], other["embedding"], atol=1e-6)
        assert "#artlens-chunk=folder-" in row["shard"]
    assert isinstance(b["Cubism__p0"]["rating"], float) and b["Cubism__p0"]["style"] == "s0"  # typed, joined by name
    assert b["Baroque__p1"]["rating"] == 1.5  # joined by relative path


def test_bad_files_are_failure_rows_of_their_chunk_and_the_run_goes_on(tmp_path, capsys):
    folder, _, names = _folder(tmp_path / "images", n=4)
    (folder / "broken.jpg").write_bytes(f.corrupt_jpeg())
    (folder / "letter.png").write_bytes(f.text_named_jpg())
    (folder / "empty.webp").write_bytes(b"")
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.jpg"), "wb") as fh:  # a name that is not UTF-8
        fh.write(f.jpeg())
    rc = main(["extract", str(folder), "--store", str(tmp_path / "s"), "--table", "t", "--shard-size", "2",
               *CLI_MODEL])
    assert rc == 3
    assert _failures(tmp_path / "s") == [("broken", "decode"), ("caf", "metadata"), ("empty", "decode"),
                                         ("letter", "decode")]
    assert len(_rows(tmp_path / "s")) == len(names)


def test_resume_skips_unchanged_chunks_and_redoes_only_the_chunk_of_a_changed_file(tmp_path, extract):
    folder, meta, names = _folder(tmp_path / "images")
    root = tmp_path / "s"
    first = extract(folder, store=root, metadata=str(meta), shard_size=2)
    before = _parts(root)
    assert (first.shards, first.shards_committed, len(before)) == (4, 4, 4)

    again = extract(folder, store=root, metadata=str(meta), shard_size=2)
    assert (again.shards_skipped, again.shards_committed, again.images) == (4, 0, 0)
    assert _parts(root) == before  # nothing rewritten

    moved = tmp_path / "moved"
    os.rename(folder, moved)  # ids are of the files' relative paths, sizes and mtimes: a moved folder is done
    assert extract(moved, store=root, metadata=str(meta), shard_size=2).shards_skipped == 4
    os.rename(moved, folder)

    old_rows = _rows(root)
    changed = folder / names[-1]  # the last chunk's file, key odd_name_v2_1
    changed.write_bytes(f.jpeg(99, 77, color=(1, 2, 3)))
    redo = extract(folder, store=root, metadata=str(meta), shard_size=2)
    assert (redo.shards_skipped, redo.shards_committed, redo.failures, redo.exit_code) == (3, 1, 0, 0)
    after = _parts(root)
    kept = {k: v for k, v in before.items() if k in after}
    assert len(kept) == 3 and {k: after[k] for k in kept} == kept  # the other chunks' parts untouched
    assert len(after) == 4 and len(set(after) - set(before)) == 1   # the changed chunk's earlier part replaced
    rows = _rows(root)
    assert set(rows) == set(old_rows) and _failures(root) == []    # every key once, none refused
    assert (rows["odd_name_v2_1"]["width"], rows["odd_name_v2_1"]["height"]) == (99, 77)
    assert not np.allclose(rows["odd_name_v2_1"]["embedding"], old_rows["odd_name_v2_1"]["embedding"])
    np.testing.assert_array_equal(rows["Cubism__p0"]["embedding"], old_rows["Cubism__p0"]["embedding"])

    (folder / "Baroque" / "p1.jpg").unlink()  # a removed file shifts the virtual shards after it
    (folder / "Aaa.jpg").write_bytes(f.jpeg(70, 50))  # an added one, first in order
    shifted = extract(folder, store=root, metadata=str(meta), shard_size=2)
    assert (shifted.failures, shifted.exit_code) == (0, 0)
    rows = _rows(root)
    assert set(rows) == set(old_rows) - {"Baroque__p1"} | {"Aaa"} and _failures(root) == []
    assert len(_parts(root)) == 4


def test_a_chunk_id_is_its_files_paths_sizes_and_mtimes(tmp_path):
    folder, _, _ = _folder(tmp_path / "images")
    src = FolderSource(str(folder), shard_size=3)
    urls = src.shards()
    assert [shard_id(u) for u in urls] == [u.rsplit("=", 1)[1] for u in urls]
    assert FolderSource(str(folder), shard_size=3).shards() == urls  # stable
    files = src.chunk(urls[0])
    touched = files[0].path
    os.utime(touched, ns=(files[0].mtime_ns + 10**9, files[0].mtime_ns + 10**9))
    now = FolderSource(str(folder), shard_size=3).shards()
    assert now[0] != urls[0] and now[1:] == urls[1:]
    assert chunk_id(0, files) == shard_id(urls[0])
    with pytest.raises(OSError, match="changed since the run started"):
        list(src.samples(urls[0], lambda failure: None))


@pytest.mark.parametrize("setup,message", [
    (lambda d: None, "is empty"),
    (lambda d: (d / "readme.txt").write_text("x"), "holds no image files"),
])
def test_a_folder_without_images_is_a_clear_user_error(tmp_path, extract, setup, message):
    folder = tmp_path / "images"
    folder.mkdir()
    setup(folder)
    with pytest.raises(UserError, match=message):
        extract(folder)
    assert main(["extract", str(folder), "--store", str(tmp_path / "s"), "--table", "t", *CLI_MODEL]) == 2


def test_bad_arguments_are_user_errors(tmp_path, extract, capsys):
    shards = write_tar(tmp_path / "shards" / "00000.tar", [("a.jpg", f.jpeg())]).parent
    with pytest.raises(UserError, match="metadata.*tar shards"):
        extract(shards, metadata=str(tmp_path / "m.csv"))
    with pytest.raises(UserError, match="not a local directory"):
        extract(tmp_path / "nowhere", folder=True)
    folder, _, _ = _folder(tmp_path / "images", n=3)
    with pytest.raises(UserError, match="shard_size"):
        extract(folder, shard_size=0)
    from artlens.pipeline.extract.config import ExtractConfig
    with pytest.raises(UserError, match="ray reads tar shards"):
        ExtractConfig(shards=str(folder), store="s", table="t", engine="ray").folder_source()
    with pytest.raises(UserError, match="does not exist"):
        extract(folder, metadata=str(tmp_path / "missing.csv"))
    assert main(["extract", str(folder), "--shards", str(shards), "--store", str(tmp_path / "s"), "--table", "t",
                 *CLI_MODEL]) == 2
    assert "SOURCE" in capsys.readouterr().err
    assert extract(shards, store=tmp_path / "tars").images == 1  # tar shards as before


@pytest.mark.slow  # one `artlens` process: importing torch takes most of its time
def test_a_run_killed_mid_way_resumes_to_the_table_of_an_uninterrupted_run(tmp_path, extract):
    folder, meta, names = _folder(tmp_path / "images")
    (folder / "broken.jpg").write_bytes(f.corrupt_jpeg())
    reference = extract(folder, store=tmp_path / "reference", metadata=str(meta), shard_size=2)
    assert reference.exit_code == 3
    expected, expected_failures = _rows(tmp_path / "reference"), _failures(tmp_path / "reference")

    root = tmp_path / "store"
    cmd = faultkit.command(root, "before-rename", "tables", 2, "extract", str(folder), "--metadata", str(meta),
                           "--shard-size", "2", "--store", str(root), "--table", "t", *CLI_MODEL)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    layout, urls = StoreLayout.at(root), FolderSource(str(folder), shard_size=2).shards()
    assert [p.name for p in layout.parts("t")] == [layout.part_path("t", urls[0]).name]

    again = extract(folder, store=root, metadata=str(meta), shard_size=2)
    assert (again.shards_skipped, again.shards_committed, again.exit_code) == (1, len(urls) - 1, 3)
    got = _rows(root)
    assert set(got) == set(expected)
    for key, row in got.items():
        np.testing.assert_allclose(row["embedding"], expected[key]["embedding"], atol=1e-6)
        assert row["rating"] == expected[key]["rating"]
    assert _failures(root) == expected_failures == [("broken", "decode")]


@pytest.mark.slow  # two spawned device processes import torch
def test_devices_give_a_folder_the_rows_of_a_one_process_run(tmp_path, extract):
    from artlens.pipeline.extract import engines
    from artlens.pipeline.extract.config import ExtractConfig
    from artlens.pipeline.models.spec import ModelSpec

    folder, meta, names = _folder(tmp_path / "images")
    extract(folder, store=tmp_path / "one", metadata=str(meta), shard_size=2)
    spec = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)
    cfg = ExtractConfig(shards=str(folder), store=str(tmp_path / "two"), table="t", model=spec, workers=0,
                        progress=False, metadata=str(meta), shard_size=2, devices=("cpu", "cpu"))
    summary = engines.run(cfg)
    assert (summary.images, summary.failures, summary.exit_code) == (len(names), 0, 0)
    one, two = _rows(tmp_path / "one"), _rows(tmp_path / "two")
    assert set(one) == set(two)
    for key, row in two.items():
        np.testing.assert_allclose(row["embedding"], one[key]["embedding"], atol=1e-6)
        assert (row["rating"], row["source_path"]) == (one[key]["rating"], one[key]["source_path"])
