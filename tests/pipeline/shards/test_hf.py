"""Hugging Face datasets in `artlens shards` (pipeline/shards/hf.py), offline: folders built here in the Hub's
layouts (README.md `dataset_info` + `data/<split>-0000N-of-0000M.parquet`; `<config>/<split>/*.parquet` with
the `huggingface` schema metadata `datasets` writes), read from disk, through `file://` and through fsspec's
`memory://` filesystem (the code path of `hf://`), and real `datasets.Dataset` objects. ClassLabel integers
become their names (the integer kept as `<col>_idx`), image structs are decoded as the Parquet source does."""
from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import imagefactory as imf
from artlens.cli.main import main
from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.shards.hf import is_hf_source
from artlens.pipeline.shards.sources import SourceError, source_format
from artlens.pipeline.shards.tarsamples import iter_samples
from artlens.pipeline.shards.write import write_shards

datasets = pytest.importorskip("datasets")  # the `hf` extra, in `dev`: a skip fails under CI=true

STYLES = ["Baroque", "Impressionism", "Cubism"]
CARD = """---
license: unknown
dataset_info:
  features:
  - name: image
    dtype: image
  - name: style
    dtype:
      class_label:
        names:
          '0': Baroque
          '1': Impressionism
          '2': Cubism
  - name: title
    dtype: string
  splits:
  - name: train
    num_examples: 5
  - name: test
    num_examples: 2
---
# A painting dataset
"""


def _table(rows: list[tuple[int, str]], seed: int) -> pa.Table:
    images = [{"bytes": imf.jpeg(color=(30 * i + seed, 60, 90)), "path": None} for i in range(len(rows))]
    return pa.table({"image": pa.array(images, pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                     "style": pa.array([r[0] for r in rows], pa.int64()),
                     "title": pa.array([r[1] for r in rows])})


@pytest.fixture
def hub(tmp_path) -> Path:
    """A dataset repository as the Hub lays it out; its Parquet files carry no `huggingface` metadata, so the
    class names come from README.md."""
    root = tmp_path / "hub" / "wikiart-mini"
    (root / "data").mkdir(parents=True)
    (root / "README.md").write_text(CARD, encoding="utf-8")
    pq.write_table(_table([(0, "a"), (1, "b"), (2, "c")], 0), root / "data" / "train-00000-of-00002.parquet")
    pq.write_table(_table([(1, "d"), (-1, "no label")], 10), root / "data" / "train-00001-of-00002.parquet")
    pq.write_table(_table([(2, "e"), (0, "f")], 20), root / "data" / "test-00000-of-00001.parquet")
    return root


def metas(out: Path) -> list[dict]:
    got = []
    for tar in sorted(out.glob("*.tar")):
        failures = []
        got += [json.loads(s.files["json"]) for s in iter_samples(str(tar), failures.append)]
        assert failures == []
    return got


def shard(source, out, **kwargs):
    kwargs.setdefault("progress", False)
    return write_shards(ShardsConfig(source=source, out=str(out), **kwargs))


def test_a_hub_layout_folder_is_detected_and_read_with_class_names(hub, tmp_path, capsys):
    assert source_format(ShardsConfig(source=str(hub), out="x")) == "hf"
    out = tmp_path / "out"
    assert main(["shards", str(hub), "--out", str(out), "--no-progress"]) == 0
    assert "7 samples" in capsys.readouterr().out
    assert json.loads((out / "manifest.json").read_text())["format"] == "hf"
    rows = metas(out)
    by_title = {r["title"]: r for r in rows}
    assert by_title["a"] == {"title": "a", "style": "Baroque", "style_idx": 0, "split": "train",
                             "source_path": "data/train-00000-of-00002.parquet#0"}
    assert [(r["title"], r["style"], r["style_idx"], r["split"]) for r in rows] == [
        ("e", "Cubism", 2, "test"), ("f", "Baroque", 0, "test"),
        ("a", "Baroque", 0, "train"), ("b", "Impressionism", 1, "train"), ("c", "Cubism", 2, "train"),
        ("d", "Impressionism", 1, "train"), ("no label", None, -1, "train")]


def test_split_selection_and_an_unknown_split(hub, tmp_path, capsys):
    manifest = shard(str(hub), tmp_path / "train", format="hf", split="train")
    assert manifest.samples == 5 and {r["split"] for r in metas(tmp_path / "train")} == {"train"}
    code = main(["shards", str(hub), "--out", str(tmp_path / "x"), "--split", "validation"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "split 'validation' not in the dataset" in err and "['test', 'train']" in err and "--split" in err
    assert not (tmp_path / "x").exists()


def test_the_same_dataset_through_fsspec_memory_and_file_urls(hub, tmp_path):
    local = shard(str(hub), tmp_path / "local", format="hf")
    fs = fsspec.filesystem("memory")
    for path in sorted(hub.rglob("*")):
        if path.is_file():
            fs.pipe(f"/repo/{path.relative_to(hub).as_posix()}", path.read_bytes())
    try:
        remote = shard("memory://repo", tmp_path / "memory", format="hf")
    finally:
        fs.rm("/repo", recursive=True)
    via_file = shard(f"file://{hub}", tmp_path / "file", format="hf")
    assert local.samples == remote.samples == via_file.samples == 7
    assert metas(tmp_path / "local") == metas(tmp_path / "memory") == metas(tmp_path / "file")
    shards = sorted(p.name for p in (tmp_path / "memory").glob("*.tar"))
    assert [(tmp_path / "memory" / n).read_bytes() == (tmp_path / "local" / n).read_bytes() for n in shards] == \
        [True] * len(shards)


def test_config_folders_and_class_names_from_the_parquet_schema_metadata(tmp_path, capsys):
    root = tmp_path / "repo"
    features = datasets.Features({"image": datasets.Image(),
                                  "genre": datasets.ClassLabel(names=["portrait", "landscape"])})
    for config, genres in (("small", [0, 1]), ("large", [1, 1, 0])):
        ds = datasets.Dataset.from_dict({"image": [{"bytes": imf.png(color=(g * 90, 9, 9)), "path": None}
                                                   for g in genres], "genre": genres}, features=features)
        (root / config / "train").mkdir(parents=True)
        ds.to_parquet(str(root / config / "train" / "0000.parquet"))
    assert not is_hf_source(str(root))  # no README: not detected, but read when asked for
    code = main(["shards", str(root), "--format", "hf", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "has the subsets ['large', 'small']; choose one with --subset" in err
    shard(str(root), tmp_path / "out", format="hf", subset="large")
    assert [(r["genre"], r["genre_idx"], r["split"]) for r in metas(tmp_path / "out")] == [
        ("landscape", 1, "train"), ("landscape", 1, "train"), ("portrait", 0, "train")]
    with pytest.raises(SourceError, match=r"subset 'medium' not in the dataset .* \['large', 'small'\]"):
        shard(str(root), tmp_path / "y", format="hf", subset="medium")


def test_readme_configs_data_files_choose_the_files(hub, tmp_path):
    card = CARD.replace("license: unknown\n", "license: unknown\nconfigs:\n- config_name: default\n  data_files:\n"
                        "  - split: train\n    path: data/train-00000-*\n")
    (hub / "README.md").write_text(card, encoding="utf-8")
    manifest = shard(str(hub), tmp_path / "out", format="hf")
    assert manifest.samples == 3 and [r["title"] for r in metas(tmp_path / "out")] == ["a", "b", "c"]


def test_hostile_hub_folders_fail_before_any_output(hub, tmp_path):
    (hub / "data" / "train-00001-of-00002.parquet").write_bytes(imf.jpeg())  # not Parquet
    with pytest.raises(SourceError, match=r"data/train-00001-of-00002.parquet is not a readable Parquet file"):
        shard(str(hub), tmp_path / "a", format="hf")
    (hub / "README.md").write_text("---\ndataset_info: [unclosed\n---\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"README.md: its YAML front matter does not parse"):
        shard(str(hub), tmp_path / "b", format="hf")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match=r"no Parquet file in the dataset"):
        shard(str(empty), tmp_path / "c", format="hf")
    (hub / "README.md").write_text(CARD, encoding="utf-8")
    with pytest.raises(SourceError, match=r"image_column 'picture' not in the table's columns"):
        shard(str(hub), tmp_path / "d", format="hf", split="test", image_column="picture")
    with pytest.raises(SourceError, match=r"carries its own columns; `metadata` and `class_file` are for"):
        shard(str(hub), tmp_path / "e", metadata=str(hub / "README.md"))
    assert not any((tmp_path / n).exists() for n in "abcde")


def test_a_hostile_class_name_and_an_out_of_range_label(tmp_path):
    root = tmp_path / "repo"
    (root / "data").mkdir(parents=True)
    hostile = "Baroque\n--- \"\u202e'; DROP TABLE t; --"
    (root / "README.md").write_text(
        "---\ndataset_info:\n  features:\n  - name: image\n    dtype: image\n  - name: style\n    dtype:\n"
        f"      class_label:\n        names:\n          '0': {json.dumps(hostile)}\n---\n", encoding="utf-8")
    pq.write_table(_table([(0, "a"), (7, "b")], 0), root / "data" / "train-00000-of-00001.parquet")
    shard(str(root), tmp_path / "out")
    assert [(r["style"], r["style_idx"]) for r in metas(tmp_path / "out")] == [(hostile, 0), (None, 7)]


def test_a_datasets_dataset_from_python_with_classlabel_and_image_features(tmp_path):
    image_file = tmp_path / "on-disk.png"
    image_file.write_bytes(imf.png(color=(1, 2, 3)))
    features = datasets.Features({"image": datasets.Image(), "style": datasets.ClassLabel(names=STYLES),
                                  "rating": datasets.Value("float32")})
    ds = datasets.Dataset.from_dict({"image": [{"bytes": imf.jpeg(), "path": "monet.jpg"},
                                               {"bytes": imf.webp(), "path": None}, str(image_file)],
                                     "style": [1, 2, 0], "rating": [4.5, None, 3.0]}, features=features)
    assert is_hf_source(ds)
    manifest = shard(ds, tmp_path / "out")   # format detected from the object
    assert (manifest.samples, manifest.failures) == (3, [])
    rows = metas(tmp_path / "out")
    assert [(r["source_path"], r["style"], r["style_idx"], r["rating"]) for r in rows] == [
        ("monet.jpg", "Impressionism", 1, 4.5), ("dataset#1", "Cubism", 2, None), (str(image_file), "Baroque", 0, 3.0)]
    # a DatasetDict: every split, or the ones asked for, each row carrying its split
    dd = datasets.DatasetDict({"train": ds, "test": ds.select([0])})
    assert shard(dd, tmp_path / "all").samples == 4
    shard(dd, tmp_path / "test", split="test")
    assert [(r["split"], r["style"]) for r in metas(tmp_path / "test")] == [("test", "Impressionism")]
    with pytest.raises(SourceError, match=r"split 'valid' not in the DatasetDict; it has \['train', 'test'\]"):
        shard(dd, tmp_path / "bad", split="valid")


def test_hf_urls_are_read_as_hugging_face_datasets():
    assert source_format(ShardsConfig(source="hf://datasets/huggan/wikiart", out="x")) == "hf"
    assert source_format(ShardsConfig(source="hf://datasets/huggan/wikiart", out="x", format="parquet")) == "parquet"
    fs, root = fsspec.core.url_to_fs("hf://datasets/huggan/wikiart@main")  # the filesystem, no request made
    assert type(fs).__name__ == "HfFileSystem" and root.startswith("datasets/huggan/wikiart")
