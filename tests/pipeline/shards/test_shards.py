"""`artlens shards`: a folder tree, WikiArt (ArtGAN layout) or a Parquet table → WebDataset shards and
manifest.json. Everything runs on real files written to tmp_path and is read back with the extractor's
reader (artlens.pipeline.shards.tarsamples) and with the webdataset library itself."""
from __future__ import annotations

import csv
import io
import json
import re
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image

import imagefactory as imf
from artlens.cli.main import build_parser, main
from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.shards.records import IMAGE_EXTS
from artlens.pipeline.shards.write import write_shards
from artlens.pipeline.shards.sources import SourceError
from artlens.pipeline.shards.tarsamples import iter_samples

KEY = re.compile(r"^[A-Za-z0-9_-]+$")


# ------------------------------------------------------------------ helpers
def put(root: Path, rel: str, data: bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def shard(src, out, **kwargs):
    kwargs.setdefault("progress", False)
    return write_shards(ShardsConfig(source=str(src), out=str(out), **kwargs))


def read_back(out: Path) -> tuple[dict, list]:
    """The manifest and every sample of its shards (in order) read with tarsamples.iter_samples; the
    reader must report no failure and each shard must hold the count the manifest gives."""
    manifest = json.loads((out / "manifest.json").read_text())
    samples = []
    for entry in manifest["shards"]:
        failures = []
        got = list(iter_samples(str(out / entry["name"]), failures.append))
        assert failures == [], failures
        assert len(got) == entry["samples"], entry
        samples += got
    assert manifest["samples"] == len(samples) == sum(e["samples"] for e in manifest["shards"])
    return manifest, samples


def image_of(sample) -> tuple[str, bytes]:
    exts = [e for e in IMAGE_EXTS if e in sample.files]
    assert len(exts) == 1 and set(sample.files) == {exts[0], "json"}, sorted(sample.files)
    return exts[0], sample.files[exts[0]]


def meta_of(sample) -> dict:
    return json.loads(sample.files["json"].decode("utf-8"))


def by_source(samples) -> dict:
    """source_path → sample (source paths must be unique for this to be meaningful)."""
    table = {meta_of(s)["source_path"]: s for s in samples}
    assert len(table) == len(samples)
    return table


def wds_samples(out: Path, manifest: dict) -> list[dict]:
    urls = [str(out / e["name"]) for e in manifest["shards"]]
    return list(wds.WebDataset(urls, shardshuffle=False, empty_check=False))


def cli_error(capsys, argv: list[str]) -> str:
    """Run the CLI (progress bar left on, as a user would), expect exit 2 and exactly one stderr line."""
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip("\n").split("\n")
    assert len(lines) == 1 and "\r" not in lines[0], captured.err
    assert lines[0].startswith("artlens shards: error: ")
    return lines[0]


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return imf.bomb_png()


# ------------------------------------------------------------------ folder source
FORMATS = {  # file in the tree → (bytes, extension the shard must store it under)
    "a.jpg": (imf.jpeg(), "jpg"),
    "b.jpeg": (imf.jpeg(color=(10, 20, 30)), "jpg"),
    "c.png": (imf.png(), "png"),
    "d.webp": (imf.webp(), "webp"),
    "e.bmp": (imf.bmp(), "bmp"),
    "f.gif": (imf.gif_animated(), "gif"),
    "g.tif": (imf.tiff(), "tif"),
    "sub/deeper/h.JPG": (imf.jpeg_exif_rotated(), "jpg"),
    "misnamed.jpg": (imf.png_rgba(), "png"),  # the stored extension follows the real format
}


def test_folder_tree_of_every_format_keeps_original_bytes_and_source_path(tmp_path):
    src = tmp_path / "src"
    for rel, (data, _) in FORMATS.items():
        put(src, rel, data)
    put(src, "notes.txt", b"not an image suffix: not a sample")
    manifest = shard(src, tmp_path / "out")
    assert manifest.samples == len(FORMATS) and manifest.failures == []
    stored, samples = read_back(tmp_path / "out")
    assert stored["shards"] == [{"name": "00000.tar", "samples": len(FORMATS)}]
    assert stored["failures"] == []
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["00000.tar", "manifest.json"]
    table = by_source(samples)
    assert set(table) == set(FORMATS)
    for rel, (data, ext) in FORMATS.items():
        assert image_of(table[rel]) == (ext, data), rel  # byte for byte, nothing re-encoded
        assert meta_of(table[rel]) == {"source_path": rel}


def test_members_of_a_sample_are_adjacent_and_sorted(tmp_path):
    src = tmp_path / "src"
    for i in range(4):
        put(src, f"d{i % 2}/p{i}.png", imf.png(8 + i, 8))
    shard(src, tmp_path / "out")
    with tarfile.open(tmp_path / "out" / "00000.tar") as tar:
        names = tar.getnames()
    keys = [n.split(".", 1)[0] for n in names]
    runs = [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
    assert len(runs) == len(set(runs)) == 4  # each key's members form one run
    for key in runs:
        assert [n for n in names if n.split(".", 1)[0] == key] == [f"{key}.json", f"{key}.png"]


NAMES = ["a.jpg", "a.png", "x.y.jpg", "x_y.jpg", "nested/a.jpg", "nested/deeper/a.jpg", "dir.v2/a.jpg",
         "Baroque/rembrandt_x.y.jpg", "café au lait.jpg", "cafe au lait.jpg", " leading space.png",
         "日本画.jpg", "名画.jpg", "nested__a.jpg"]


def test_keys_are_dot_free_and_unique_across_collisions(tmp_path):
    src = tmp_path / "src"
    for i, rel in enumerate(NAMES):
        put(src, rel, imf.png(16 + i, 16))
    out = tmp_path / "out"
    assert shard(src, out).samples == len(NAMES)
    with tarfile.open(out / "00000.tar") as tar:
        assert all(name.count(".") == 1 for name in tar.getnames())  # 'key.ext': the key holds no dot
    manifest, samples = read_back(out)
    keys = {meta_of(s)["source_path"]: s.key for s in samples}
    assert set(keys) == set(NAMES)
    assert len(set(keys.values())) == len(NAMES)
    assert all(KEY.match(k) for k in keys.values()), keys
    assert keys["Baroque/rembrandt_x.y.jpg"] == "Baroque__rembrandt_x_y"
    assert {keys["a.jpg"], keys["a.png"]} == {"a", "a_1"}
    for i, rel in enumerate(NAMES):  # each key still carries its own image
        assert Image.open(io.BytesIO(image_of(by_source(samples)[rel])[1])).width == 16 + i
    # the webdataset library groups the members into the very same samples
    ours = [(s.key, image_of(s)[1], s.files["json"]) for s in samples]
    theirs = [(d["__key__"], d["png"], d["json"]) for d in wds_samples(out, manifest)]
    assert theirs == ours


def test_shard_size_sets_images_per_shard_and_failures_do_not_count(tmp_path):
    src = tmp_path / "src"
    for i in range(5):
        put(src, f"p{i}.png", imf.png(10 + i, 10))
    put(src, "p2_broken.jpg", imf.truncated_jpeg())  # sorts between p2 and p3
    out = tmp_path / "out"
    manifest = shard(src, out, shard_size=2)
    assert manifest.shards == [{"name": "00000.tar", "samples": 2}, {"name": "00001.tar", "samples": 2},
                               {"name": "00002.tar", "samples": 1}]
    assert [f["source_path"] for f in manifest.failures] == ["p2_broken.jpg"]
    assert sorted(p.name for p in out.iterdir()) == ["00000.tar", "00001.tar", "00002.tar", "manifest.json"]
    stored, samples = read_back(out)
    assert [s.key for s in samples] == ["p0", "p1", "p2", "p3", "p4"]
    assert [s.shard for s in samples] == [str(out / n) for n in ["00000.tar"] * 2 + ["00001.tar"] * 2 + ["00002.tar"]]
    assert [d["__key__"] for d in wds_samples(out, stored)] == ["p0", "p1", "p2", "p3", "p4"]


def test_default_shard_size_is_1000():
    assert ShardsConfig(source="s", out="o").shard_size == 1000
    assert build_parser().parse_args(["shards", "s", "--out", "o"]).shard_size == 1000
    with pytest.raises(ValueError, match="shard_size must be at least 1"):
        ShardsConfig(source="s", out="o", shard_size=0)


INVALID = {  # file → (bytes, words its failure reason must contain)
    "corrupt.jpg": (imf.corrupt_jpeg(), "broken data stream"),
    "truncated.jpg": (imf.truncated_jpeg(), "truncated"),
    "zero.png": (imf.zero_byte(), "empty file (0 bytes)"),
    "text.jpg": (imf.text_named_jpg(), "not an image"),
    "page.png": (imf.html_named_png(), "not an image"),
}


def test_invalid_images_are_listed_with_their_reason_never_dropped(tmp_path, bomb, capsys):
    src = tmp_path / "src"
    put(src, "good.jpg", imf.jpeg())
    put(src, "sub/good.png", imf.png())
    for rel, (data, _) in INVALID.items():
        put(src, rel, data)
    put(src, "bomb.png", bomb)
    out = tmp_path / "out"
    assert main(["shards", str(src), "--out", str(out), "--no-progress"]) == 0
    assert "2 samples in 1 shard(s)" in capsys.readouterr().out
    manifest, samples = read_back(out)
    assert manifest["samples"] == 2
    assert sorted(meta_of(s)["source_path"] for s in samples) == ["good.jpg", "sub/good.png"]
    reasons = {f["source_path"]: f["reason"] for f in manifest["failures"]}
    assert len(reasons) == len(manifest["failures"]) == len(INVALID) + 1
    for rel, (_, words) in INVALID.items():
        assert words in reasons[rel], (rel, reasons[rel])
    assert "decompression bomb" in reasons["bomb.png"] and "max_pixels" in reasons["bomb.png"]


def test_max_side_reencodes_large_images_and_records_their_size(tmp_path, capsys):
    src = tmp_path / "src"
    wide = Image.new("RGB", (300, 120), (200, 10, 10))
    wide.paste((10, 10, 200), (150, 0, 300, 120))
    originals = {"wide.png": imf._save(wide, "PNG"), "tall.jpg": imf.jpeg(200, 400),
                 "small.png": imf.png(40, 30)}
    for rel, data in originals.items():
        put(src, rel, data)
    out = tmp_path / "out"
    assert main(["shards", str(src), "--out", str(out), "--max-side", "64", "--no-progress"]) == 0
    table = by_source(read_back(out)[1])
    ext, data = image_of(table["wide.png"])
    img = Image.open(io.BytesIO(data))
    assert (ext, img.format, img.size) == ("png", "PNG", (64, 26))
    assert img.convert("RGB").getpixel((5, 13)) == (200, 10, 10)  # still the same picture, scaled
    assert img.convert("RGB").getpixel((58, 13)) == (10, 10, 200)
    assert meta_of(table["wide.png"]) == {"source_path": "wide.png", "original_width": 300,
                                          "original_height": 120}
    ext, data = image_of(table["tall.jpg"])
    img = Image.open(io.BytesIO(data))
    assert (ext, img.format, img.size) == ("jpg", "JPEG", (32, 64))
    assert (meta_of(table["tall.jpg"])["original_width"], meta_of(table["tall.jpg"])["original_height"]) == (200, 400)
    assert image_of(table["small.png"]) == ("png", originals["small.png"])  # under the limit: untouched
    assert "original_width" not in meta_of(table["small.png"])
    # without --max-side the large ones are kept byte for byte too
    shard(src, tmp_path / "plain")
    plain = by_source(read_back(tmp_path / "plain")[1])
    assert {rel: image_of(s)[1] for rel, s in plain.items()} == originals


# ------------------------------------------------------------------ metadata join
def test_csv_metadata_joins_on_relative_path_or_file_name(tmp_path):
    src = tmp_path / "src"
    for rel in ["a.jpg", "sub/b.png", "sub/c.jpg", "café au lait.jpg", "no-meta.jpg"]:
        put(src, rel, imf.jpeg() if rel.endswith("jpg") else imf.png())
    with open(tmp_path / "meta.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["file_name", "title", "year"])
        w.writerow(["a.jpg", "Water Lilies", "1919"])           # file name
        w.writerow(["sub/b.png", "Houses", "1890"])             # relative path
        w.writerow(["./sub/c.jpg", "Olive Trees", "1889"])      # relative path written with ./
        w.writerow(["café au lait.jpg", "Café, au lait", ""])   # unicode, a comma in a quoted field
        w.writerow(["elsewhere.jpg", "Not in the folder", "1"])
    shard(src, tmp_path / "out", metadata=str(tmp_path / "meta.csv"))
    table = by_source(read_back(tmp_path / "out")[1])
    assert meta_of(table["a.jpg"]) == {"title": "Water Lilies", "year": 1919, "source_path": "a.jpg"}
    assert meta_of(table["sub/b.png"]) == {"title": "Houses", "year": 1890, "source_path": "sub/b.png"}
    assert meta_of(table["sub/c.jpg"])["title"] == "Olive Trees"
    assert meta_of(table["café au lait.jpg"])["title"] == "Café, au lait"
    assert meta_of(table["no-meta.jpg"]) == {"source_path": "no-meta.jpg"}


def test_jsonl_metadata_keeps_types_and_a_spreadsheet_bom_csv_still_joins(tmp_path):
    src = tmp_path / "src"
    put(src, "gogh/starry.jpg", imf.jpeg())
    (tmp_path / "meta.jsonl").write_text(
        json.dumps({"file": "starry.jpg", "artist": "Vincent van Gogh", "year": 1889, "tags": ["night"]})
        + "\n\n", encoding="utf-8")
    shard(src, tmp_path / "a", metadata=str(tmp_path / "meta.jsonl"))
    (sample,) = read_back(tmp_path / "a")[1]
    assert meta_of(sample) == {"artist": "Vincent van Gogh", "year": 1889, "tags": ["night"],
                               "source_path": "gogh/starry.jpg"}
    # Excel's "CSV UTF-8" starts the file with a byte-order mark, which must not hide the join column
    (tmp_path / "excel.csv").write_bytes("filename;x\n".replace(";", ",").encode("utf-8-sig")
                                         + "gogh/starry.jpg,1\n".encode())
    shard(src, tmp_path / "b", metadata=str(tmp_path / "excel.csv"))
    (sample,) = read_back(tmp_path / "b")[1]
    assert meta_of(sample) == {"x": 1, "source_path": "gogh/starry.jpg"}


# ------------------------------------------------------------------ WikiArt (ArtGAN layout)
@pytest.fixture
def wikiart(tmp_path) -> dict:
    root = tmp_path / "wikiart"
    put(root, "Impressionism/claude-monet_water-lilies.jpg", imf.jpeg(color=(20, 120, 80)))
    put(root, "Baroque/rembrandt_the-night-watch.jpg", imf.jpeg(color=(60, 40, 10)))
    put(root, "Northern_Renaissance/jan-van-eyck_the-arnolfini-portrait.jpg", imf.jpeg(color=(90, 60, 30)))
    put(root, "Impressionism/edgar-degas_not-in-this-split.jpg", imf.jpeg())
    csvs = tmp_path / "wikiart_csv"
    csvs.mkdir()
    (csvs / "style_class.txt").write_text("0 Baroque\n1 Impressionism\n2 Northern_Renaissance\n")
    (csvs / "style_train.csv").write_text(
        "Impressionism/claude-monet_water-lilies.jpg,1\n"
        "Baroque/rembrandt_the-night-watch.jpg,0\n"
        "\n"
        "Northern_Renaissance/jan-van-eyck_the-arnolfini-portrait.jpg,2\n"
        "Impressionism/claude-monet_lost.jpg,1\n"
        "Baroque/rembrandt_the-night-watch.jpg,9\n")
    return {"root": root, "split": csvs / "style_train.csv", "classes": csvs / "style_class.txt"}


def test_wikiart_split_csv_and_class_file(tmp_path, wikiart, capsys):
    out = tmp_path / "out"
    assert main(["shards", str(wikiart["root"]), "--out", str(out), "--format", "wikiart",
                 "--metadata", str(wikiart["split"]), "--class-file", str(wikiart["classes"]),
                 "--no-progress"]) == 0
    manifest, samples = read_back(out)
    table = by_source(samples)
    assert sorted(table) == ["Baroque/rembrandt_the-night-watch.jpg", "Impressionism/claude-monet_water-lilies.jpg",
                             "Northern_Renaissance/jan-van-eyck_the-arnolfini-portrait.jpg"]  # only the split's rows
    monet = table["Impressionism/claude-monet_water-lilies.jpg"]
    assert meta_of(monet) == {"style": "Impressionism", "style_idx": 1, "split": "style_train",
                              "artist": "claude-monet", "title": "water-lilies", "folder": "Impressionism",
                              "source_path": "Impressionism/claude-monet_water-lilies.jpg"}
    assert monet.key == "Impressionism__claude-monet_water-lilies"
    assert image_of(monet)[1] == (wikiart["root"] / "Impressionism/claude-monet_water-lilies.jpg").read_bytes()
    assert meta_of(table["Northern_Renaissance/jan-van-eyck_the-arnolfini-portrait.jpg"])["style"] == \
        "Northern_Renaissance"
    failures = manifest["failures"]
    assert len(failures) == 2
    assert failures[0]["source_path"] == "Impressionism/claude-monet_lost.jpg"
    assert "cannot read file" in failures[0]["reason"]
    assert failures[1]["source_path"].endswith("style_train.csv:6") and "bad split line" in failures[1]["reason"]
    assert [d["__key__"] for d in wds_samples(out, manifest)] == [s.key for s in samples]


def test_wikiart_argument_errors(tmp_path, wikiart, capsys):
    base = ["shards", str(wikiart["root"]), "--out", str(tmp_path / "out"), "--format", "wikiart"]
    assert "--class-file" in cli_error(capsys, base + ["--metadata", str(wikiart["split"])])
    line = cli_error(capsys, base + ["--metadata", str(tmp_path / "style_val.csv"),
                                     "--class-file", str(wikiart["classes"])])
    assert "--metadata" in line and "style_val.csv does not exist" in line
    line = cli_error(capsys, ["shards", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"),
                              "--format", "wikiart", "--metadata", str(wikiart["split"]),
                              "--class-file", str(wikiart["classes"])])
    assert "is not a directory" in line
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ Parquet
def test_parquet_with_hugging_face_image_struct(tmp_path):
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    monet, starry, unnamed = imf.jpeg(color=(1, 2, 3)), imf.png(), imf.webp()
    table = pa.table({
        "image": pa.array([{"bytes": monet, "path": "monet.jpg"}, {"bytes": starry, "path": "sub/starry.png"},
                           {"bytes": None, "path": "gone.jpg"}, {"bytes": imf.text_named_jpg(), "path": "t.jpg"},
                           {"bytes": unnamed, "path": None}], type=image_type),
        "title": ["Water Lilies", "Starry Night", "Gone", "Text", "Untitled"],
        "year": pa.array([1919, 1889, None, 0, 2000], type=pa.int64()),
    })
    pq.write_table(table, tmp_path / "hf.parquet")
    out = tmp_path / "out"
    manifest = shard(tmp_path / "hf.parquet", out, format="parquet")
    assert (manifest.samples, len(manifest.failures)) == (3, 2)
    stored, samples = read_back(out)
    got = by_source(samples)
    assert meta_of(got["monet.jpg"]) == {"title": "Water Lilies", "year": 1919, "source_path": "monet.jpg"}
    assert image_of(got["monet.jpg"]) == ("jpg", monet)
    assert image_of(got["sub/starry.png"]) == ("png", starry)
    assert image_of(got["hf.parquet#4"]) == ("webp", unnamed)  # no path: file and row number
    reasons = {f["source_path"]: f["reason"] for f in stored["failures"]}
    assert "empty or null" in reasons["gone.jpg"] and "not an image" in reasons["t.jpg"]
    assert len({s.key for s in samples}) == 3 and all(KEY.match(s.key) for s in samples)


def test_parquet_folder_with_a_plain_binary_column(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    images = [imf.png(20 + i, 20) for i in range(4)]
    for n in range(2):
        pq.write_table(pa.table({"id": [2 * n, 2 * n + 1], "img": pa.array(images[2 * n: 2 * n + 2], pa.binary()),
                                 "artist": ["A", "B"]}), parts / f"part-{n}.parquet")
    out = tmp_path / "out"
    shard(parts, out, format="parquet", shard_size=3)
    manifest, samples = read_back(out)
    assert [e["samples"] for e in manifest["shards"]] == [3, 1] and manifest["failures"] == []
    assert [meta_of(s) for s in samples] == [
        {"id": i, "artist": "AB"[i % 2], "source_path": f"part-{i // 2}.parquet#{i % 2}"} for i in range(4)]
    assert [image_of(s)[1] for s in samples] == images
    assert len({s.key for s in samples}) == 4 and all(KEY.match(s.key) for s in samples)
    assert [d["__key__"] for d in wds_samples(out, manifest)] == [s.key for s in samples]


def test_parquet_errors(tmp_path, capsys):
    pq.write_table(pa.table({"title": ["x"], "year": [1]}), tmp_path / "noimg.parquet")
    out = str(tmp_path / "out")
    line = cli_error(capsys, ["shards", str(tmp_path / "noimg.parquet"), "--out", out, "--format", "parquet"])
    assert "no image column" in line and "--image-column" in line
    line = cli_error(capsys, ["shards", str(tmp_path / "noimg.parquet"), "--out", out, "--format", "parquet",
                              "--image-column", "picture"])
    assert "'picture' not in the table's columns" in line
    (tmp_path / "fake.parquet").write_bytes(imf.text_named_jpg())
    line = cli_error(capsys, ["shards", str(tmp_path / "fake.parquet"), "--out", out, "--format", "parquet"])
    assert "not a readable Parquet file" in line
    assert "add --format parquet" in cli_error(capsys, ["shards", str(tmp_path / "noimg.parquet"), "--out", out])
    assert not Path(out).exists()


# ------------------------------------------------------------------ errors
def test_metadata_without_a_join_column(tmp_path, capsys):
    put(tmp_path / "src", "a.jpg", imf.jpeg())
    (tmp_path / "meta.csv").write_text("title,year\nWater Lilies,1919\n")
    with pytest.raises(SourceError, match=r"needs one of the columns .*'file_name'.*found \['title', 'year'\]"):
        shard(tmp_path / "src", tmp_path / "out", metadata=str(tmp_path / "meta.csv"))
    line = cli_error(capsys, ["shards", str(tmp_path / "src"), "--out", str(tmp_path / "out"),
                              "--metadata", str(tmp_path / "meta.csv")])
    assert "to join on" in line and "'title', 'year'" in line
    assert not (tmp_path / "out").exists()  # refused before any output is made


def test_missing_metadata_file(tmp_path, capsys):
    put(tmp_path / "src", "a.jpg", imf.jpeg())
    missing = str(tmp_path / "meta.csv")
    with pytest.raises(SourceError, match="meta.csv does not exist"):
        shard(tmp_path / "src", tmp_path / "out", metadata=missing)
    line = cli_error(capsys, ["shards", str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--metadata", missing])
    assert line == f"artlens shards: error: metadata file {missing} does not exist"
    assert not (tmp_path / "out").exists()


def test_unknown_format(tmp_path, capsys):
    put(tmp_path / "src", "a.jpg", imf.jpeg())
    with pytest.raises(SourceError, match=r"unknown format 'tiffs'; choose from \['folder', 'hf', 'parquet', 'wikiart'\]"):
        shard(tmp_path / "src", tmp_path / "out", format="tiffs")
    assert not (tmp_path / "out").exists()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:  # argparse refuses it before the command runs
        main(["shards", str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--format", "tiffs"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "argument --format: invalid choice: 'tiffs'" in err.splitlines()[-1]
    assert "folder" in err.splitlines()[-1] and "parquet" in err.splitlines()[-1]


def test_out_that_already_holds_shards_is_refused_and_left_intact(tmp_path, capsys):
    put(tmp_path / "src", "a.jpg", imf.jpeg())
    out = tmp_path / "out"
    shard(tmp_path / "src", out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    put(tmp_path / "src", "b.jpg", imf.jpeg(color=(0, 0, 0)))
    with pytest.raises(FileExistsError, match=r"already holds shards \(00000.tar, …\); choose an empty `out`"):
        shard(tmp_path / "src", out)
    line = cli_error(capsys, ["shards", str(tmp_path / "src"), "--out", str(out)])
    assert "already holds shards" in line and str(out) in line and line.endswith("choose an empty --out")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# ------------------------------------------------------------------ end to end
def test_real_paintings_end_to_end(paintings, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["shards", str(paintings), "--out", str(out), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith(f"14 samples in 1 shard(s) under {out}; 0 invalid")
    manifest, samples = read_back(out)
    assert manifest["samples"] == 14 and manifest["failures"] == []
    assert manifest["shards"] == [{"name": "00000.tar", "samples": 14}]
    files = sorted(p.name for p in paintings.iterdir())
    assert sorted(meta_of(s)["source_path"] for s in samples) == files
    for s in samples:
        name = meta_of(s)["source_path"]
        assert image_of(s) == (Path(name).suffix[1:], (paintings / name).read_bytes())
        assert s.key == Path(name).stem.replace(".", "_")
    assert [d["__key__"] for d in wds_samples(out, manifest)] == [s.key for s in samples]
