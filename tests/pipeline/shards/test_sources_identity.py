"""`artlens shards` metadata (issue 17, points 2 and 13): CSV metadata in Latin-1 or UTF-16 is read or refused
in one line naming the file; Parquet source columns named like the store's own come out of extract under the
names of the one rule, with the real embeddings."""
import json
import re
import tarfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import imagefactory as f
from artlens import store
from artlens.cli.main import main
from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.shards.sources import SourceError
from artlens.pipeline.shards.write import write_shards

ROWS = [("a.jpg", "Café au lait", "Müller"), ("b.jpg", "Crème", "Zoë")]
CSV = "file_name,title,artist\n" + "".join(f"{n},{t},{a}\n" for n, t, a in ROWS)


def _folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for name, *_ in ROWS:
        (images / name).write_bytes(f.jpeg(40, 30))
    return images


def _json_fields(shard_dir):
    out = {}
    with tarfile.open(shard_dir / "00000.tar") as tar:
        for member in tar.getmembers():
            if member.name.endswith(".json"):
                fields = json.loads(tar.extractfile(member).read())
                out[fields["source_path"]] = fields
    return out


@pytest.mark.parametrize("encoding, option", [("utf-16", None), ("utf-8-sig", None), ("latin-1", "latin-1"),
                                              ("utf-16-le", "utf-16-le"), ("cp1252", "cp1252")])
def test_metadata_csv_in_another_encoding_is_read(tmp_path, encoding, option):
    images = _folder(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_bytes(CSV.encode(encoding))  # utf-16 and utf-8-sig write a byte-order mark
    write_shards(ShardsConfig(source=str(images), out=str(tmp_path / "out"), metadata=str(labels),
                              metadata_encoding=option, progress=False))
    fields = _json_fields(tmp_path / "out")
    assert {k: (v["title"], v["artist"]) for k, v in fields.items()} == {n: (t, a) for n, t, a in ROWS}


@pytest.mark.parametrize("encoding, says", [("latin-1", "is not utf-8 text (byte 0xe9 at offset"),
                                            ("utf-16-le", "looks like UTF-16 without a byte-order mark")])
def test_metadata_csv_that_is_not_utf8_is_refused_in_one_line_naming_the_file(tmp_path, capsys, encoding, says):
    images = _folder(tmp_path)
    labels = tmp_path / "labels.csv"
    labels.write_bytes(CSV.encode(encoding))
    with pytest.raises(SourceError, match=re.escape(says)):
        write_shards(ShardsConfig(source=str(images), out=str(tmp_path / "out"), metadata=str(labels),
                                  progress=False))
    code = main(["shards", str(images), "--out", str(tmp_path / "cli"), "--metadata", str(labels), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and str(labels) in err and "--metadata-encoding" in err
    assert not (tmp_path / "cli" / "00000.tar").exists()


def test_wikiart_files_in_latin1_are_refused_or_read_with_the_encoding(tmp_path):
    root = tmp_path / "wikiart"
    (root / "Impressionism").mkdir(parents=True)
    (root / "Impressionism" / "claude-monet_café.jpg").write_bytes(f.jpeg(40, 30))
    split, classes = tmp_path / "style_train.csv", tmp_path / "style_class.txt"
    split.write_bytes("Impressionism/claude-monet_café.jpg,0\n".encode("latin-1"))
    classes.write_bytes("0 Impressionnisme_é\n".encode("latin-1"))
    cfg = dict(source=str(root), format="wikiart", metadata=str(split), class_file=str(classes), progress=False)
    with pytest.raises(SourceError, match="class_file .*style_class.txt is not utf-8"):
        write_shards(ShardsConfig(out=str(tmp_path / "a"), **cfg))
    manifest = write_shards(ShardsConfig(out=str(tmp_path / "b"), metadata_encoding="latin-1", **cfg))
    assert manifest.samples == 1
    (fields,) = _json_fields(tmp_path / "b").values()
    assert (fields["style"], fields["title"]) == ("Impressionnisme_é", "café")
    with pytest.raises(SourceError, match="unknown metadata_encoding 'klingon'"):
        write_shards(ShardsConfig(out=str(tmp_path / "c"), metadata_encoding="klingon", **cfg))


def test_parquet_source_columns_named_like_store_columns_keep_the_real_embeddings(tmp_path, extract):
    images = [f.jpeg(48 + 8 * i, 40, color=(60 * i, 20, 200)) for i in range(3)]
    constant = [1.0, 0.0, 0.0]
    pq.write_table(pa.table({
        "image": [{"bytes": b, "path": None} for b in images], "Embedding": [constant] * 3,
        "KEY": ["x", "y", "z"], "source_path": [f"museum/{i}.jpg" for i in range(3)],
        "original_width": [1, 2, 3], "Style": ["S"] * 3, "style": ["s"] * 3}), tmp_path / "src.parquet")
    write_shards(ShardsConfig(source=str(tmp_path / "src.parquet"), out=str(tmp_path / "odd"), format="parquet",
                              progress=False))
    pq.write_table(pa.table({"image": [{"bytes": b, "path": f"museum/{i}.jpg"} for i, b in enumerate(images)]}),
                   tmp_path / "clean.parquet")
    write_shards(ShardsConfig(source=str(tmp_path / "clean.parquet"), out=str(tmp_path / "clean"),
                              format="parquet", progress=False))
    assert extract(tmp_path / "odd", store=tmp_path / "s1").exit_code == 0
    assert extract(tmp_path / "clean", store=tmp_path / "s2").exit_code == 0
    with store.open(tmp_path / "s1") as s:
        odd = s.sql("SELECT * FROM t ORDER BY source_path").to_pylist()
    with store.open(tmp_path / "s2") as s:
        clean = s.sql("SELECT key, source_path, embedding FROM t ORDER BY source_path").to_pylist()
    assert [r["source_path"] for r in odd] == [r["source_path"] for r in clean] == [f"museum/{i}.jpg" for i in range(3)]
    np.testing.assert_allclose([r["embedding"] for r in odd], [r["embedding"] for r in clean], atol=1e-6)
    assert [(json.loads(r["meta_Embedding"]), r["meta_KEY"], r["original_width_2"], r["style"], r["Style_2"])
            for r in odd] == [(constant, k, w, "s", "S") for k, w in zip("xyz", (1, 2, 3))]
