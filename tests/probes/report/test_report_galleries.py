"""`artlens report` shows the paintings behind its numbers: per class the most typical and the most confused
paintings of a real linear probe on a real extracted table (tiny model), the map, neighbour sheets; a table
with no images gives cards, and a hostile label stays text. The report is a folder of static files."""
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import imagefactory as f
from artlens import store
from artlens.cli.main import main
from artlens.probes.report import write_report
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter
from conftest import meta, write_tar

HOSTILE = "<script>alert(1)</script>"
COLOURS = {"red": (200, 30, 30), "green": (30, 190, 40), HOSTILE: (40, 40, 210)}


def _shards(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for shard in range(2):
        members = []
        for i in range(12):
            style = list(COLOURS)[i % 3]
            colour = tuple(int(np.clip(c + rng.integers(-25, 25), 0, 255)) for c in COLOURS[style])
            key = f"s{shard}_{i:02d}"
            members += [(f"{key}.jpg", f.jpeg(72 + 8 * (i % 4), 64, colour)), (f"{key}.json", meta(style=style))]
        write_tar(root / f"{shard:05d}.tar", members)
    return root


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs)["src"])


@pytest.fixture(scope="module")
def report(tmp_path_factory, tiny_model):
    from artlens.pipeline.extract.config import ExtractConfig
    from artlens.pipeline.extract.run import run_extract
    from artlens.pipeline.models.spec import ModelSpec
    from conftest import TINY_MODEL

    root = tmp_path_factory.mktemp("galleries")
    shards = _shards(root / "shards")
    st = root / "store"
    run_extract(ExtractConfig(shards=str(shards), store=str(st), table="art", workers=0, progress=False,
                              model=ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)),
                loaded=tiny_model)
    assert main(["probe", "linear", "--store", str(st), "--table", "art", "--label", "style", "--folds", "3",
                 "--min-count", "5"]) == 0
    out = root / "report"
    write_report(st, out)
    return st, out


def test_each_class_has_its_most_typical_and_most_confused_paintings_as_thumbnails(report):
    st, out = report
    html = (out / "index.html").read_text()
    parser = _Images()
    parser.feed(html)
    thumbs = [s for s in parser.srcs if s.startswith("galleries/")]
    assert thumbs, "no gallery thumbnails in the report"
    for src in thumbs:                                 # every tile is a file of the folder, a real thumbnail
        with Image.open(out / src) as im:
            assert max(im.size) <= 160 and im.format in ("JPEG", "PNG")
    for label in ("red", "green", "&lt;script&gt;alert(1)&lt;/script&gt;"):
        assert f"{label}: most typical (8 rows)" in html and f"{label}: most confused (8 rows)" in html
    with store.open(st) as s:
        keys = set(s.sql("SELECT key FROM art").column("key").to_pylist())
    shown = set(re.findall(r"<figcaption><b>([^<]+)</b>", html))
    assert shown and shown <= keys                     # every tile names a row of the table


def test_the_thumbnail_is_the_painting_of_its_key(report):
    st, out = report
    html = (out / "index.html").read_text()
    src, key = re.search(r'<img src="(galleries/[^"]+)" alt="([^"]+)"', html).groups()
    with store.open(st) as s:
        want = s.image("art", key).convert("RGB").resize((8, 8))
    with Image.open(out / src) as im:
        got = im.convert("RGB").resize((8, 8))
    diff = np.abs(np.asarray(want, dtype=int) - np.asarray(got, dtype=int)).mean()
    assert diff < 12, f"the thumbnail of {key} is not its painting (mean pixel difference {diff:.1f})"


def test_the_report_has_a_map_and_neighbour_sheets(report):
    _, out = report
    html = (out / "index.html").read_text()
    assert "Paintings: maps and neighbours" in html
    assert "art: the first two principal components of its embeddings, coloured by style" in html
    maps = re.findall(r'<img src="(figures/map-[0-9a-f]+\.png)"', html)
    assert len(maps) == 1 and (out / maps[0]).stat().st_size > 1000
    sheets = re.findall(r"<h4>neighbours of (s\d_\d\d) in art</h4>", html)
    assert len(sheets) == 3 and len(set(sheets)) == 3
    md = (out / "report.md").read_text()
    assert "## Paintings: maps and neighbours" in md and "](galleries/" in md


def test_a_hostile_label_is_text_in_html_and_markdown(report):
    _, out = report
    html, md = (out / "index.html").read_text(), (out / "report.md").read_text()
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert HOSTILE not in md


def test_a_table_without_images_gets_cards_not_missing_tiles(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 8)).astype(np.float32)
    X[:, 0] += np.repeat([0.0, 3.0, 6.0], 20)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    rows = [{"key": f"e{i:02d}", "shard": "embeddings.parquet", "style": "abc"[i // 20]} for i in range(60)]
    writer = TableWriter(tmp_path, TableEntry(name="imported", model="m", pretrained="p", preprocess="x", dim=8))
    writer.commit("embeddings.parquet", rows, X, [])
    writer.finish()
    assert main(["probe", "linear", "--store", str(tmp_path), "--table", "imported", "--label", "style",
                 "--folds", "3"]) == 0
    index = write_report(tmp_path, tmp_path / "report")
    html = index.read_text()
    assert "most typical (20 rows)" in html and "(no image)" in html
    assert not list((tmp_path / "report" / "galleries").glob("*.jpg"))
