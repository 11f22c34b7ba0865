"""Images from the store (store/images.py, store/thumbnails.py): a row's painting read from its shard (a tar's one
member, a folder's file), pixel for pixel; thumbnails cached in the store; a moved or changed shard a clear error
naming it, never a wrong image; object storage read with ranged reads."""
import io
import os

import imagefactory as f
import numpy as np
import pytest
from PIL import Image

from artlens import store
from artlens.errors import UserError
from artlens.store import images
from artlens.store.images import ImageNotFound, ImageUnavailable
from conftest import meta, write_tar


def _pixels(img):
    return np.asarray(img.convert("RGB"))


@pytest.fixture
def tar_store(tmp_path, extract):
    """Two shards of noise PNGs (each an exact image) and JPEGs; returns (store dir, {key: bytes}, shard dir)."""
    originals = {}
    for s in range(2):
        members = []
        for i in range(3):
            key = f"s{s}_{i}"
            rng = np.random.default_rng(10 * s + i)
            img = Image.fromarray(rng.integers(0, 256, (40 + 4 * i, 60, 3), dtype=np.uint8))
            out = io.BytesIO()
            img.save(out, "PNG")
            originals[key] = out.getvalue()
            members += [(f"{key}.png", originals[key]), (f"{key}.json", meta(item=i))]
        key = f"s{s}_jpeg"
        originals[key] = f.jpeg(90, 50, color=(10 + s, 200, 30))
        members += [(f"{key}.jpg", originals[key])]
        write_tar(tmp_path / "sh" / f"{s:05d}.tar", members)
    summary = extract(tmp_path / "sh")
    assert summary.failures == 0
    return tmp_path / "store", originals, tmp_path / "sh"


def test_image_ext_tuple_agrees_with_the_tar_reader():
    from artlens.pipeline.shards.records import IMAGE_EXTS

    assert images.IMAGE_EXTS == IMAGE_EXTS


def test_image_is_the_original_pixel_for_pixel(tar_store):
    root, originals, _ = tar_store
    with store.open(root) as s:
        for key, data in originals.items():
            got = s.image("t", key)
            want = Image.open(io.BytesIO(data)).convert("RGB")
            assert got.size == want.size and np.array_equal(_pixels(got), _pixels(want)), key
        data, media = s.image_bytes("t", "s1_2")
        assert data == originals["s1_2"] and media == "image/png"
        data, media = s.image_bytes("t", "s0_jpeg")
        assert data == originals["s0_jpeg"] and media == "image/jpeg"


def test_a_second_image_of_a_shard_reads_no_headers_again(tar_store, monkeypatch):
    root, originals, _ = tar_store
    with store.open(root) as s:
        s.image("t", "s0_0")
        built = []
        real = images.build_map
        monkeypatch.setattr(images, "build_map", lambda shard: built.append(shard) or real(shard))
        assert np.array_equal(_pixels(s.image("t", "s0_1")),
                              _pixels(Image.open(io.BytesIO(originals["s0_1"]))))
        assert built == []  # the member map of shard 0 was kept


def test_thumbnail_size_and_cache_survive_a_moved_shard(tar_store):
    root, originals, shards = tar_store
    with store.open(root) as s:
        thumb = s.image("t", "s0_jpeg", size=32)
        assert max(thumb.size) == 32 and thumb.size == (32, 18)  # 90x50 → longer side 32
        data, media = s.image_bytes("t", "s0_jpeg", size=32)
        assert media == "image/jpeg" and Image.open(io.BytesIO(data)).format == "JPEG"
        path = s.layout.thumbnail_path("t", "s0_jpeg", 32)
        assert path.is_file() and path.is_relative_to(root / "thumbnails" / "t")
        os.rename(shards / "00000.tar", shards / "moved.tar")
        assert s.image_bytes("t", "s0_jpeg", size=32)[0] == data  # from the cache, the shard untouched
        with pytest.raises(ImageUnavailable, match=r"00000\.tar.*moved or deleted"):
            s.image("t", "s0_jpeg")
        with pytest.raises(ImageUnavailable, match="moved or deleted"):
            s.image_bytes("t", "s0_1", size=32)  # not cached: needs the shard
        assert s.make_thumbnails("t", 64) == 4  # shard 1's rows; shard 0's are unavailable, skipped
        assert s.make_thumbnails("t", 64) == 0  # all there now


def test_thumbnail_size_out_of_range_is_refused(tar_store):
    root, _, _ = tar_store
    with store.open(root) as s:
        for bad in (0, 15, 2049, -1, 3.5, True):
            with pytest.raises(UserError, match="size must be a whole number"):
                s.image_bytes("t", "s0_0", size=bad)


def test_a_changed_shard_is_an_error_naming_it_never_a_wrong_image(tar_store):
    root, originals, shards = tar_store
    other = [(f"s1_{i}.png", originals[f"s0_{i}"]) for i in range(3)] + [("s1_jpeg.jpg", originals["s0_jpeg"])]
    write_tar(shards / "00001.tar", other)  # same keys, other paintings
    with store.open(root) as s:
        with pytest.raises(ImageUnavailable, match=r"shard .*00001\.tar changed since table 't'"):
            s.image("t", "s1_0")
        with pytest.raises(ImageUnavailable, match=r"00001\.tar changed"):
            s.image_bytes("t", "s1_jpeg")


def test_a_member_swapped_in_place_is_caught_by_the_recorded_size(tar_store, monkeypatch):
    """Same shard id (the same edges and size) but another image under the key: the row's width/height differ."""
    root, originals, shards = tar_store
    with store.open(root) as s:
        row = images.find_row(s, "t", "s0_1")
        assert (row.width, row.height) == (60, 44)
        wrong = images.ImageRow(**{**vars(row), "width": 61})
        monkeypatch.setattr(images, "find_row", lambda *_: wrong)
        with pytest.raises(ImageUnavailable, match="recorded 61x44"):
            s.image("t", "s0_1")


def test_unknown_table_and_keys_are_not_found(tar_store):
    root, _, _ = tar_store
    with store.open(root) as s:
        for table, key in (("nope", "s0_0"), ("t", "nope"), ("t", "../s0_0"), ("t", "s0_0' OR '1'='1"),
                           ("t", "s0_0.png"), ("t", "ünï\u0000cødé"), ("t; DROP", "x"), ("t", "")):
            with pytest.raises(ImageNotFound):
                s.image_bytes(table, key)
        with pytest.raises(ImageNotFound):
            s.image_bytes("t", 3)


def test_hostile_keys_read_their_own_image(tmp_path, extract):
    keys = ["it's \"quoted\"", "ünïcødé 画", "dir/sub"]
    members = []
    for i, key in enumerate(keys):
        members.append((f"{key}.png", f.png(20 + i, 10, color=(i * 60, 0, 0))))
    write_tar(tmp_path / "sh" / "00000.tar", members)
    extract(tmp_path / "sh")
    with store.open(tmp_path / "store") as s:
        for i, key in enumerate(keys):
            assert s.image("t", key).size == (20 + i, 10)
            assert s.image("t", key, size=16).size[0] == 16


def test_corrupt_member_and_decompression_bomb_are_unavailable(tmp_path, extract):
    write_tar(tmp_path / "sh" / "00000.tar", [("ok.png", f.png()), ("bad.png", f.corrupt_jpeg())])
    extract(tmp_path / "sh")
    with pytest.raises(ImageUnavailable, match="not an image"):
        images.open_header(f.text_named_jpg(), "x")
    with pytest.raises(ImageUnavailable, match="pixels|too large"):
        images.open_header(f.bomb_png(), "key 'bomb'")
    with store.open(tmp_path / "store") as s:
        assert s.image("t", "ok").size == (96, 64)
        with pytest.raises(ImageNotFound):  # a failure row: never embedded, no row
            s.image("t", "bad")


def test_folder_table_reads_the_file_at_its_source_path(tmp_path, extract):
    folder = tmp_path / "pics"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(f.png(30, 20))
    (folder / "sub" / "b.png").write_bytes(f.png(22, 33, color=(1, 2, 3)))
    extract(folder)
    with store.open(tmp_path / "store") as s:
        rows = {r["source_path"]: r["key"] for r in s.sql("SELECT key, source_path FROM t").to_pylist()}
        assert s.image("t", rows["sub/b.png"]).size == (22, 33)
        assert np.array_equal(_pixels(s.image("t", rows["a.png"])),
                              _pixels(Image.open(io.BytesIO(f.png(30, 20)))))
        (folder / "a.png").unlink()
        with pytest.raises(ImageUnavailable, match=r"'a\.png'.*moved or deleted"):
            s.image("t", rows["a.png"])


def test_a_table_without_images_says_so(tmp_path):
    from artlens.store.catalog import TableEntry
    from artlens.store.writer import TableWriter

    writer = TableWriter(tmp_path / "st", TableEntry(name="imp", model="m", dim=4))
    writer.commit(str(tmp_path / "emb.parquet"), [{"key": "a", "shard": str(tmp_path / "emb.parquet")}],
                  np.ones((1, 4), np.float32), [])
    writer.finish()
    with store.open(tmp_path / "st") as s:
        with pytest.raises(ImageUnavailable, match="has no images"):
            s.image("imp", "a")
        assert s.image_url("imp", "a") is None
        with pytest.raises(ImageNotFound):
            s.image_url("imp", "b")


def test_object_storage_reads_only_the_member(tmp_path, extract, monkeypatch):
    s3fs = pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    from s3server import moto_server

    creds = {"AWS_ACCESS_KEY_ID": "artlens", "AWS_SECRET_ACCESS_KEY": "artlens", "AWS_DEFAULT_REGION": "us-east-1"}
    members, originals = [], {}
    for i in range(12):  # ~12 × 60 KB of noise: the shard is many READ_BLOCKs
        rng = np.random.default_rng(i)
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (100, 200, 3), dtype=np.uint8)).save(out, "PNG")
        originals[f"k{i}"] = out.getvalue()
        members.append((f"k{i}.png", out.getvalue()))
    local = write_tar(tmp_path / "00000.tar", members)
    with moto_server() as endpoint:
        import fsspec.config

        for name, value in creds.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": endpoint, "key": "artlens",
                                                       "secret": "artlens"})
        monkeypatch.setenv("ARTLENS_CACHE", str(tmp_path / "cache"))
        fs = s3fs.S3FileSystem(key="artlens", secret="artlens", endpoint_url=endpoint)
        fs.mkdir("imgs")
        fs.put(str(local), "imgs/shards/00000.tar")
        extract("s3://imgs/shards/00000.tar", store=tmp_path / "store")
        for path in (tmp_path / "store").rglob("*"):
            if path.is_file() and not path.name.endswith(".wal"):
                fs.put(str(path), f"imgs/store/{path.relative_to(tmp_path / 'store').as_posix()}")
        before = images.fetched_bytes
        with store.open("s3://imgs/store") as s:
            got = s.image("t", "k7")
            assert np.array_equal(_pixels(got), _pixels(Image.open(io.BytesIO(originals["k7"]))))
            fetched = images.fetched_bytes - before
            size = local.stat().st_size
            assert 0 < fetched < size / 2, (fetched, size)  # headers and one member, not the shard
            assert s.make_thumbnails("t", 32, keys=["k1", "k2"]) == 2
            assert fs.exists(f"imgs/store/{s.layout.thumbnail_path('t', 'k1', 32).relative_to(s.layout.root)}")
            assert not any(p.name.endswith(".tar") for p in s.layout.root.rglob("*"))


def test_a_linked_table_and_a_text_table_have_no_images(labelled_store):
    with store.open(labelled_store) as s:
        key = s.sql("SELECT key FROM art_deformed LIMIT 1").column("key")[0].as_py()
        with pytest.raises(ImageUnavailable, match="'deformation' table of 'art'"):
            s.image("art_deformed", key)
        prompt = s.sql("SELECT key FROM prompts LIMIT 1").column("key")[0].as_py()
        with pytest.raises(ImageUnavailable, match="holds no images"):
            s.image_bytes("prompts", prompt, size=32)


def test_a_catalog_without_image_url_column_reads_as_none(tmp_path):
    """Catalogs written before the field: catalog.json rows lack it, catalog.duckdb gains the column."""
    import json

    from artlens.store.catalog import Catalog, TableEntry, read_json

    catalog = Catalog(tmp_path / "catalog.duckdb")
    catalog.put(TableEntry(name="t", dim=4, image_url_column="link"))
    doc = json.loads(catalog.json_path.read_text())
    del doc["tables"][0]["image_url_column"]
    catalog.json_path.write_text(json.dumps(doc))
    assert read_json(catalog.json_path)["tables"][0].image_url_column == ""
    assert catalog.get("t").image_url_column == "link"


def test_a_compressed_shard_is_streamed_to_its_member(tmp_path, extract):
    import tarfile

    path = tmp_path / "sh" / "00000.tar.gz"
    path.parent.mkdir()
    data = {"a": f.png(30, 10), "b": f.png(12, 40, color=(9, 9, 9))}
    with tarfile.open(path, "w:gz") as tar:
        for key, blob in data.items():
            info = tarfile.TarInfo(f"{key}.png")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    extract(tmp_path / "sh")
    with store.open(tmp_path / "store") as s:
        assert s.image_bytes("t", "b") == (data["b"], "image/png")
        assert s.image("t", "a").size == (30, 10)
