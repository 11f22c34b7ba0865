"""`artlens neighbors --sheet`, `artlens extract --thumbnails N` and `artlens import --image-url-column`, run as a
person runs them (the CLI's main, real store, tiny model)."""
import json
import os

import imagefactory as f
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from artlens import store
from artlens.cli.main import main
from artlens.pipeline import sheets
from artlens.store.images import ImageNotFound
from conftest import TINY_MODEL, meta, write_tar

MODEL = ["--model", TINY_MODEL, "--pretrained", "random", "--device", "cpu", "--workers", "0", "--no-progress"]
COLORS = [(220, 20, 20), (20, 220, 20), (20, 20, 220), (220, 220, 20), (20, 220, 220), (220, 20, 220)]


@pytest.fixture
def extracted(tmp_path, capsys):
    for s in range(2):
        members = []
        for i in range(3):
            key = f"s{s}_{i}"
            members += [(f"{key}.jpg", f.jpeg(120, 80, color=COLORS[3 * s + i])), (f"{key}.json", meta(i=i))]
        write_tar(tmp_path / "sh" / f"{s:05d}.tar", members)
    root = tmp_path / "st"
    code = main(["extract", "--shards", str(tmp_path / "sh"), "--store", str(root), "--table", "t",
                 "--thumbnails", "48", *MODEL])
    out = capsys.readouterr().out
    assert code == 0, out
    return root, out


def _tile_centre(x_index: int, y_index: int) -> tuple[int, int]:
    return (sheets.PAD + x_index * (sheets.CELL + sheets.PAD) + sheets.CELL // 2,
            sheets.PAD + y_index * (sheets.CELL + sheets.LABEL_H + sheets.PAD) + sheets.CELL // 2)


def test_extract_thumbnails_makes_them_for_every_row(extracted):
    root, out = extracted
    assert "thumbnails: 6 made of longer side 48" in out
    with store.open(root) as s:
        for key in s.sql("SELECT key FROM t").column("key").to_pylist():
            path = s.layout.thumbnail_path("t", key, 48)
            assert path.is_file() and max(Image.open(path).size) == 48


def test_extract_thumbnails_out_of_range_is_a_clear_error(tmp_path, capsys):
    write_tar(tmp_path / "sh" / "00000.tar", [("a.jpg", f.jpeg())])
    code = main(["extract", "--shards", str(tmp_path / "sh"), "--store", str(tmp_path / "st"), "--table", "t",
                 "--thumbnails", "5", *MODEL])
    err = capsys.readouterr().err
    assert code == 2 and "--thumbnails must be 0" in err and "16 to 2048" in err


def test_neighbors_sheet_has_the_query_and_every_neighbour(extracted, tmp_path, capsys):
    root, _ = extracted
    sheet = tmp_path / "out" / "sheet.png"
    code = main(["neighbors", "--store", str(root), "--table", "t", "--key", "s0_0", "-k", "3",
                 "--sheet", str(sheet), "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    hits = json.loads(out)
    assert len(hits) == 3 and "s0_0" not in [h["key"] for h in hits]
    img = Image.open(sheet).convert("RGB")
    assert img.size == sheets.sheet_size(4) == (sheets.PAD + 4 * (sheets.CELL + sheets.PAD),
                                               sheets.PAD + sheets.CELL + sheets.LABEL_H + sheets.PAD)
    query = img.getpixel(_tile_centre(0, 0))
    assert abs(query[0] - 220) < 40 and query[1] < 60 and query[2] < 60  # the query's own red painting
    for i in range(1, 4):
        assert img.getpixel(_tile_centre(i, 0)) not in (sheets.BACKGROUND, sheets.CARD)


def test_a_neighbour_whose_shard_moved_is_a_grey_card(extracted, tmp_path, capsys):
    root, _ = extracted
    os.rename(tmp_path / "sh" / "00001.tar", tmp_path / "elsewhere.tar")
    for path in (root / "thumbnails").rglob("*.jpg"):
        path.unlink()  # the cache would still show them: this is about the shard
    sheet = tmp_path / "sheet.png"
    assert main(["neighbors", "--store", str(root), "--table", "t", "--key", "s0_0", "-k", "5",
                 "--sheet", str(sheet), "--format", "json"]) == 0
    keys = [h["key"] for h in json.loads(capsys.readouterr().out)]
    img = Image.open(sheet).convert("RGB")
    assert img.size == sheets.sheet_size(6)
    columns, _ = sheets.grid(6)
    for i, key in enumerate(["s0_0"] + keys):
        pixel = img.getpixel(_tile_centre(i % columns, i // columns))
        assert (pixel == sheets.CARD) == key.startswith("s1_"), (key, pixel)


def test_sheet_labels_cut_long_keys():
    assert sheets.short("x" * 100) == "x" * (sheets.KEY_CHARS - 1) + "…"
    assert sheets.short("short") == "short"


def _import_source(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4, 8)).astype(np.float32)
    table = pa.table({"key": ["a", "b", "c", "d"], "emb": [list(map(float, v)) for v in vectors],
                      "link": ["https://example.org/a.jpg", "https://example.org/b.jpg", None, ""]})
    path = tmp_path / "emb.parquet"
    pq.write_table(table, path)
    return path


def test_import_image_url_column_is_recorded_and_served(tmp_path, capsys):
    src = _import_source(tmp_path)
    root = tmp_path / "st"
    assert main(["import", str(src), "--store", str(root), "--table", "nga", "--embedding-column", "emb",
                 "--image-url-column", "link"]) == 0
    capsys.readouterr()
    doc = json.loads((root / "catalog.json").read_text())
    assert doc["tables"][0]["image_url_column"] == "link"
    with store.open(root) as s:
        assert s.entry("nga").image_url_column == "link"
        assert s.image_url("nga", "a") == "https://example.org/a.jpg"
        assert s.image_url("nga", "c") is None and s.image_url("nga", "d") is None
        with pytest.raises(ImageNotFound):
            s.image_url("nga", "zz")
    sheet = tmp_path / "sheet.png"
    assert main(["neighbors", "--store", str(root), "--table", "nga", "--key", "a", "-k", "2",
                 "--sheet", str(sheet), "--format", "json"]) == 0
    img = Image.open(sheet).convert("RGB")
    assert img.size == sheets.sheet_size(3)
    assert all(img.getpixel(_tile_centre(i, 0)) == sheets.CARD for i in range(3))  # no images: cards


def test_import_refuses_an_image_url_column_that_does_not_exist(tmp_path, capsys):
    src = _import_source(tmp_path)
    code = main(["import", str(src), "--store", str(tmp_path / "st"), "--table", "nga", "--embedding-column",
                 "emb", "--image-url-column", "url"])
    err = capsys.readouterr().err
    assert code == 2 and "no image URL column 'url'" in err and "link" in err
    assert not (tmp_path / "st" / "tables" / "nga").exists()
