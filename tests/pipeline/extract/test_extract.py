"""Extraction end to end with the tiny model: awkward input embedded, bad input reported, never fatal."""
import numpy as np
import pytest

import imagefactory as f
from artlens import store
from conftest import meta, write_tar

AWKWARD = {
    "rgba": ("png", f.png_rgba(96, 64)),
    "palette": ("png", f.png_palette(96, 64)),
    "gray": ("jpg", f.jpeg_grayscale(96, 64)),
    "cmyk": ("jpg", f.jpeg_cmyk(96, 64)),
    "png16": ("png", f.png_16bit_gray(256, 16)),
    "png16rgb": ("png", f.png_16bit_rgb(64, 32)),
    "exif6": ("jpg", f.jpeg_exif_rotated(120, 80, orientation=6)),
    "anim": ("gif", f.gif_animated(48, 32)),
    "webp": ("webp", f.webp(96, 64)),
    "bmp": ("bmp", f.bmp(96, 64)),
    "tiff": ("tif", f.tiff(96, 64)),
    "large": ("png", f.large_png(6000, 4000)),
}


def test_awkward_but_valid_input_is_embedded(tmp_path, extract):
    members = [(f"{k}.{ext}", data) for k, (ext, data) in AWKWARD.items()]
    summary = extract(write_tar(tmp_path / "s" / "00000.tar", members).parent)
    assert (summary.images, summary.failures, summary.exit_code) == (len(AWKWARD), 0, 0)
    with store.open(tmp_path / "store") as s:
        rows = {r["key"]: r for r in s.sql("SELECT key, width, height, embedding FROM t").to_pylist()}
    assert set(rows) == set(AWKWARD)
    assert (rows["exif6"]["width"], rows["exif6"]["height"]) == (120, 80)  # upright dimensions
    assert (rows["large"]["width"], rows["large"]["height"]) == (6000, 4000)
    for row in rows.values():
        assert np.linalg.norm(row["embedding"]) == pytest.approx(1.0, abs=1e-5)


def test_exif_rotation_changes_the_embedding_to_the_upright_one(tmp_path, extract, tiny_model):
    from PIL import Image, ImageOps
    import io

    rotated = f.jpeg_exif_rotated(120, 80, orientation=6)
    extract(write_tar(tmp_path / "s" / "00000.tar", [("r.jpg", rotated)]).parent)
    with store.open(tmp_path / "store") as s:
        stored = np.array(s.sql("SELECT embedding FROM t").column(0).to_pylist()[0])
    img = Image.open(io.BytesIO(rotated))
    upright = tiny_model.embed(tiny_model.preprocess(ImageOps.exif_transpose(img).convert("RGB"))[None])[0]
    sideways = tiny_model.embed(tiny_model.preprocess(img.convert("RGB"))[None])[0]
    assert float(stored @ upright) > 0.99999
    assert np.abs(stored - sideways).max() > 1e-3


@pytest.mark.slow
def test_very_large_legitimate_image_is_embedded_up_to_the_pixel_limit(tmp_path, extract):
    big = f.large_png(12000, 9000)  # 108 Mpx: above PIL's warning limit, below artlens' default limit
    shards = write_tar(tmp_path / "s" / "00000.tar", [("big.png", big)]).parent
    summary = extract(shards)
    assert (summary.images, summary.failures) == (1, 0)
    limited = extract(shards, table="limited", max_pixels=100_000_000)
    assert (limited.images, limited.failures) == (0, 1)


BAD = [
    ("corrupt.jpg", f.corrupt_jpeg(), "corrupt", "decode"),
    ("truncated.jpg", f.truncated_jpeg(), "truncated", "decode"),
    ("zero.jpg", f.zero_byte(), "zero", "decode"),
    ("text.jpg", f.text_named_jpg(), "text", "decode"),
    ("html.png", f.html_named_png(), "html", "decode"),
    ("bomb.png", f.bomb_png(20000, 20000), "bomb", "decode"),
    ("metaonly.json", meta(title="no image"), "metaonly", "read"),
    ("badjson.jpg", f.jpeg(), None, None),
    ("badjson.json", b"{not json", "badjson", "metadata"),
    ("../escape.jpg", f.jpeg(), "../escape.jpg", "read"),
    ("/etc/abs.jpg", f.jpeg(), "/etc/abs.jpg", "read"),
]


def test_invalid_input_gets_one_failure_row_each_and_never_stops_the_run(tmp_path, extract):
    good = [("good1.jpg", f.jpeg()), ("good1.json", meta(style="x"))]
    dup = [("good2.jpg", f.png()), ("good1.jpg", f.jpeg(color=(0, 0, 255)))]  # later duplicate of good1
    members = good + [(n, d) for n, d, _, _ in BAD] + dup
    write_tar(tmp_path / "s" / "00000.tar", members)
    jpg = f.jpeg()
    tail = write_tar(tmp_path / "full.tar", [("tail1.jpg", jpg), ("tail2.jpg", jpg)]).read_bytes()
    padded = -(-len(jpg) // 512) * 512
    (tmp_path / "s" / "00001.tar").write_bytes(tail[: 512 + padded + 512 + 100])  # cut inside tail2's data
    summary = extract(tmp_path / "s")
    assert summary.exit_code == 3
    with store.open(tmp_path / "store") as s:
        keys = sorted(s.sql("SELECT key FROM t").column(0).to_pylist())
        failures = s.sql("SELECT key, stage, error, shard, \"table\" FROM failures").to_pylist()
        catalog = s.sql("SELECT rows, failures FROM catalog WHERE name = 't'").to_pylist()[0]
    assert keys == ["good1", "good2", "tail1"]
    expected = {(k, stage) for _, _, k, stage in BAD if k} | {("good1", "read"), ("tail2", "read")}
    assert {(r["key"], r["stage"]) for r in failures} == expected
    assert len(failures) == len(expected)  # exactly one row each
    assert all(r["table"] == "t" and r["shard"] for r in failures)
    assert catalog == {"rows": 3, "failures": len(expected)}
    by_key = {r["key"]: r["error"] for r in failures}
    assert "decompression bomb" in by_key["bomb"]
    assert "duplicate key" in by_key["good1"]
    assert "no image member" in by_key["metaonly"]


def test_img2dataset_layout_caption_and_json_columns(tmp_path, extract):
    members = [
        ("000000001.jpg", f.jpeg()), ("000000001.txt", "a cubist still life".encode()),
        ("000000001.json", meta(key="000000001", url="http://x/1.jpg", caption="a cubist still life",
                                width=96, height=64, status="success", exif={"Make": "X"})),
    ]
    extract(write_tar(tmp_path / "s" / "00000.tar", members).parent)
    with store.open(tmp_path / "store") as s:
        row = s.sql("SELECT * EXCLUDE (embedding) FROM t").to_pylist()[0]
    assert row["key"] == "000000001" and row["caption"] == "a cubist still life"
    assert row["url"] == "http://x/1.jpg" and row["status"] == "success"
    assert row["meta_key"] == "000000001" and row["meta_width"] == 96 and row["width"] == 96
    assert row["exif"] == '{"Make": "X"}'  # nested JSON kept as text
    assert "meta_caption" not in row  # identical to the .txt caption


def test_parts_with_different_fields_form_one_table_conflicts_kept_as_text(tmp_path, extract):
    write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg()), ("a.json", meta(year=1889, style="x"))])
    write_tar(tmp_path / "s" / "00001.tar", [("b.jpg", f.jpeg()), ("b.json", meta(year="c. 1810", school="y"))])
    write_tar(tmp_path / "s" / "00002.tar", [("c.jpg", f.jpeg()), ("c.json", meta(year=1890)),
                                              ("d.jpg", f.jpeg()), ("d.json", meta(year="1890s"))])
    summary = extract(tmp_path / "s")
    assert set(summary.schema_conflicts) == {"year"}
    with store.open(tmp_path / "store") as s:
        rows = {r["key"]: r for r in s.sql("SELECT key, year, style, school FROM t").to_pylist()}
        conflicts = s.sql("SELECT schema_conflicts FROM catalog").column(0)[0].as_py()
    assert {k: r["year"] for k, r in rows.items()} == {"a": "1889", "b": "c. 1810", "c": "1890", "d": "1890s"}
    assert rows["a"]["style"] == "x" and rows["b"]["school"] == "y" and rows["a"]["school"] is None
    assert "year" in conflicts


def test_other_model_or_weights_refused_unless_overwrite(tmp_path, extract, tiny_model):
    from artlens.pipeline.extract.config import ExtractConfig
    from artlens.pipeline.models.spec import ModelSpec
    from artlens.pipeline.extract.run import run_extract
    from artlens.store.catalog import CatalogError
    from conftest import TINY_MODEL

    shards = write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg())]).parent
    extract(shards)
    other = ExtractConfig(shards=str(shards), store=str(tmp_path / "store"), table="t", workers=0,
                          progress=False, model=ModelSpec(model=TINY_MODEL, pretrained="random", seed=1))
    with pytest.raises(CatalogError, match="random:seed=0.*random:seed=1"):
        run_extract(other)
    summary = run_extract(ExtractConfig(**{**other.__dict__, "overwrite": True}))
    assert summary.shards_committed == 1 and summary.table_rows == 1
    with store.open(tmp_path / "store") as s:
        assert s.sql("SELECT pretrained FROM catalog").column(0)[0].as_py() == "random:seed=1"


def test_brace_pattern_and_list_file_specs(tmp_path, extract):
    for i in range(3):
        write_tar(tmp_path / "s" / f"{i:05d}.tar", [(f"k{i}.jpg", f.jpeg())])
    assert extract(str(tmp_path / "s" / "{00000..00001}.tar"), table="brace").table_rows == 2
    listing = tmp_path / "shards.txt"
    listing.write_text("# shards\ns/00002.tar\n")
    assert extract(listing, table="listed").table_rows == 1
