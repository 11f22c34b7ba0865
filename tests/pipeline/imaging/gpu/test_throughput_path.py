"""The fast extraction path, on this CPU-only machine: the model's preprocessing split into uint8 geometry
and device normalisation, the routing of JPEGs to the device decoder, the device stage itself (run with
torchvision's JPEG decoder on the CPU here; nvJPEG on CUDA is measured by `make bench` on a GPU),
several models over one decode, shards claimed by workers, and the benchmark at small settings."""
import io
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms as T

import imagefactory as f
from artlens import store
from conftest import TINY_MODEL, meta, write_tar
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.imaging.gpu.stage import DeviceStage, in_order
from artlens.pipeline.extract.run import run_extract
from artlens.pipeline.imaging.gpu.decoders import Eligible, MIN_PIXEL_BUDGET, chunks, gpu_eligible, pixel_budget
from artlens.pipeline.extract.loader import DecodeOptions, batch_loader, shard_batches
from artlens.pipeline.models.load import load_model
from artlens.pipeline.imaging.pixels import PixelPlan, WholePlan, plan_for
from artlens.pipeline.imaging.gpu.resample import Source

TINY_64 = TINY_MODEL.replace("artlens-tiny-vit.json", "artlens-tiny-vit-64.json")
BIG = 10**9


def _jpeg(w, h, seed=0, **kw) -> bytes:
    rng = np.random.default_rng(seed)
    img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).resize((w, h))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def test_plan_gives_the_model_input_of_its_own_compose(tiny_model, paintings):
    plan = tiny_model.plan
    assert isinstance(plan, PixelPlan) and plan.gpu_ok
    for path in sorted(paintings.iterdir())[:5]:
        image = Image.open(path).convert("RGB")
        reference = tiny_model.preprocess(image)
        via_plan = plan.normalize(plan.geometry(image)[None], torch.float32)[0]
        assert plan.geometry(image).dtype == torch.uint8
        assert torch.allclose(via_plan, reference, atol=1e-5)


def test_unknown_transform_keeps_the_whole_compose_on_the_cpu(tiny_model):
    custom = T.Compose([T.Lambda(lambda im: im.rotate(90)), *tiny_model.preprocess.transforms])
    plan = plan_for(custom)
    assert isinstance(plan, WholePlan) and not plan.gpu_ok
    image = Image.open(io.BytesIO(_jpeg(80, 60))).convert("RGB")
    assert torch.equal(plan.geometry(image), custom(image))


def test_batched_geometry_equals_per_image_geometry(tiny_model):
    from torchvision.io import decode_jpeg
    images = [decode_jpeg(torch.frombuffer(bytearray(_jpeg(w, h, seed=i)), dtype=torch.uint8))
              for i, (w, h) in enumerate([(640, 480), (300, 900), (224, 224), (100, 60), (1000, 225)])]
    batch = tiny_model.plan.geometry_batch([Source.of_tensor(im) for im in images])
    assert batch.dtype == torch.uint8 and batch.shape == (5, 3, 224, 224)
    assert torch.equal(batch, torch.stack([tiny_model.plan.geometry(im) for im in images]))


@pytest.mark.parametrize("name, data, eligible", [
    ("rgb jpeg", _jpeg(64, 48), True),
    ("progressive jpeg", _jpeg(64, 48, progressive=True), True),
    ("grey jpeg", f.jpeg_grayscale(), True),
    ("cmyk jpeg", f.jpeg_cmyk(), False),
    ("exif-rotated jpeg", f.jpeg_exif_rotated(), False),
    ("truncated jpeg", f.truncated_jpeg(), False),
    ("png", f.png(), False),
    ("text named .jpg", f.text_named_jpg(), False),
    ("empty", b"", False),
])
def test_only_what_nvjpeg_decodes_like_pillow_goes_to_the_device(name, data, eligible):
    assert (gpu_eligible(data, BIG) is not None) is eligible, name


def test_pixel_limit_applies_before_the_device():
    assert gpu_eligible(_jpeg(200, 100), max_pixels=10_000) is None


def test_decoder_calls_stay_within_the_pixel_budget_and_keep_every_image_in_order():
    sizes = [(100, 100), (300, 100), (50, 50), (1000, 1000), (10, 10), (200, 200)]
    items = [(i, b"", Eligible(s)) for i, s in enumerate(sizes)]
    runs = list(chunks(items, budget=45_000))
    assert [[i for i, *_ in run] for run in runs] == [[0, 1, 2], [3], [4, 5]]
    for run in runs:  # within budget, except an image larger than the budget, alone in its call
        assert sum(w * h for *_, e in run for w, h in [e.size]) <= 45_000 or len(run) == 1
    assert [[i for i, *_ in run] for run in chunks(items, budget=10**9)] == [[0, 1, 2, 3, 4, 5]]
    assert pixel_budget(torch.device("cpu")) == MIN_PIXEL_BUDGET


def test_a_shards_last_batch_of_rows_carries_the_commit_flag(tmp_path, tiny_model):
    jpegs = [(f"{k}.jpg", _jpeg(64, 48, i)) for i, k in enumerate("abcd")]
    plans, opts = [tiny_model.plan], DecodeOptions(BIG, batch_size=2, jpeg_to_device=True)
    exact = list(shard_batches(str(write_tar(tmp_path / "exact.tar", jpegs)), plans, opts))
    assert [(len(b.rows), b.last) for b in exact] == [(2, False), (2, True)]   # no extra empty batch
    broken = write_tar(tmp_path / "broken.tar", [*jpegs[:3], ("z.jpg", f.truncated_jpeg())])
    tail = list(shard_batches(str(broken), plans, opts))
    assert [(len(b.rows), b.last) for b in tail] == [(2, False), (1, True)]
    assert [x.key for x in tail[-1].failures] == ["z"]                       # reported with the final batch
    empty = list(shard_batches(str(write_tar(tmp_path / "none.tar", [("a.json", meta())])), plans, opts))
    assert len(empty) == 1 and empty[0].last and not empty[0].rows and empty[0].commit
    cut = tmp_path / "cut.tar"
    with tarfile.open(tmp_path / "exact.tar") as tar:
        second = tar.getmembers()[1].offset_data + 10
    cut.write_bytes((tmp_path / "exact.tar").read_bytes()[:second])         # ends inside the second member
    read = list(shard_batches(str(cut), plans, opts))                       # what was read is kept
    assert [(len(b.rows), b.last, b.commit) for b in read] == [(1, True, True)]
    assert [x.stage for x in read[0].failures] == ["read"]
    gone = list(shard_batches(str(tmp_path / "missing.tar"), plans, opts))  # unreadable: retried next run
    assert len(gone) == 1 and gone[0].last and not gone[0].commit and gone[0].failures[0].stage == "read"


def _run_path(shards, plans, to_device, workers=2, batch_size=4, warm=False):
    loader = batch_loader(shards, plans, DecodeOptions(BIG, batch_size, to_device), workers)
    stage = DeviceStage(plans, torch.device("cpu"), BIG) if to_device else None
    if warm:
        stage.warm_up()
    rows, pixels, failures, on_device = [], [], [], 0
    for batch in in_order(loader, stage, threads=2):
        failures += [(x.key, x.stage) for x in batch.failures]
        on_device += batch.gpu_decoded
        if batch.pixels is not None:
            assert len(batch.rows) == len(batch.pixels[0])
            rows += [r["key"] for r in batch.rows]
            pixels += list(zip(*batch.pixels))
    order = np.argsort(rows)
    return [rows[i] for i in order], [pixels[i] for i in order], sorted(failures), on_device


def test_device_stage_gives_the_same_rows_failures_and_pixels_as_pillow(tmp_path, tiny_model):
    members = [("a.jpg", _jpeg(300, 200, 1)), ("b.jpg", f.jpeg_cmyk()), ("c.png", f.png()),
               ("d.jpg", f.truncated_jpeg()), ("e.jpg", f.jpeg_exif_rotated()), ("f.jpg", f.corrupt_jpeg()),
               ("g.jpg", _jpeg(90, 400, 2, progressive=True)), ("h.jpg", f.jpeg_grayscale()),
               ("i.jpg", f.text_named_jpg()), ("j.json", meta(title="no image")), ("k.jpg", _jpeg(500, 500, 3))]
    shards = [str(write_tar(tmp_path / "s" / f"{i:05d}.tar", members[i::2])) for i in range(2)]
    plans = [tiny_model.plan, load_model(ModelSpec(model=TINY_64, pretrained="random", device="cpu")).plan]
    pil = _run_path(shards, plans, to_device=False)
    dev = _run_path(shards, plans, to_device=True)
    assert pil[0] == dev[0] == ["a", "b", "c", "e", "g", "h", "k"]
    assert pil[2] == dev[2] and {k for k, _ in dev[2]} == {"d", "f", "i", "j"}
    assert dev[3] == 4 and pil[3] == 0           # a, g, h, k decoded by the tensor decoder
    for p_pix, d_pix in zip(pil[1], dev[1]):
        for p, d in zip(p_pix, d_pix):           # both plans, same shapes, near-identical pixels
            assert p.shape == d.shape and (p.float() - d.float()).abs().mean() < 1.0
    warmed = _run_path(shards, plans, to_device=True, warm=True)  # decoder and kernels started beforehand
    assert warmed[0] == dev[0] and warmed[2] == dev[2] and warmed[3] == dev[3]
    assert all(torch.equal(a, b) for wa, da in zip(warmed[1], dev[1]) for a, b in zip(wa, da))


def test_warm_up_runs_the_decoder_and_every_plans_geometry_before_the_first_batch(tiny_model):
    plans = [tiny_model.plan, load_model(ModelSpec(model=TINY_64, pretrained="random", device="cpu")).plan]
    stage = DeviceStage(plans, torch.device("cpu"), BIG)
    assert stage.warm_up().result(timeout=60) is None
    assert stage.warm_error is None
    broken = DeviceStage([object()], torch.device("cpu"), BIG)  # a plan without geometry: the warm-up fails
    broken.warm_up().result(timeout=60)                           # ... quietly, and says why in the log
    assert broken.warm_error is not None and "geometry_batch" in broken.warm_error


def test_jpeg_bytes_are_read_from_plain_local_tars_and_carried_otherwise(tmp_path, tiny_model):
    """A plain local tar sends only where each JPEG lies (the device stage reads the file); a gzipped one
    sends the bytes; both give the same pixels."""
    import gzip
    members = [(f"{k}.jpg", _jpeg(120 + 10 * i, 90, i)) for i, k in enumerate("abc")] + [("d.png", f.png())]
    plain = write_tar(tmp_path / "p" / "00000.tar", members)
    packed = tmp_path / "g" / "00000.tar.gz"
    packed.parent.mkdir()
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    opts = DecodeOptions(BIG, batch_size=8, jpeg_to_device=True)
    by_file, = [b for b in shard_batches(str(plain), [tiny_model.plan], opts)]
    by_bytes, = [b for b in shard_batches(str(packed), [tiny_model.plan], opts)]
    assert by_file.jpeg_file == str(plain) and by_file.jpeg_bytes is None and len(by_file.jpeg_spans) == 3
    assert by_bytes.jpeg_file is None and by_bytes.jpeg_bytes.numel() == sum(len(d) for _, d in members[:3])
    stage = DeviceStage([tiny_model.plan], torch.device("cpu"), BIG)
    a, b = stage.prepare(by_file), stage.prepare(by_bytes)
    assert [r["key"] for r in a.rows] == [r["key"] for r in b.rows] == ["a", "b", "c", "d"]
    assert a.gpu_decoded == b.gpu_decoded == 3 and torch.equal(a.pixels[0], b.pixels[0])


def test_a_shard_changed_after_its_headers_were_checked_fails_those_images_not_the_run(tmp_path, tiny_model):
    members = [(f"{k}.jpg", _jpeg(100, 80, i)) for i, k in enumerate("abc")]
    shard = write_tar(tmp_path / "00000.tar", members)
    batch, = shard_batches(str(shard), [tiny_model.plan], DecodeOptions(BIG, 8, jpeg_to_device=True))
    data = bytearray(shard.read_bytes())
    start, end = batch.jpeg_spans[1]
    data[start:end] = bytes(end - start)                  # b's bytes overwritten in place
    shard.write_bytes(bytes(data[:batch.jpeg_spans[2][0] + 100]))   # and c's cut short
    ready = DeviceStage([tiny_model.plan], torch.device("cpu"), BIG).prepare(batch)
    assert [r["key"] for r in ready.rows] == ["a"] and len(ready.pixels[0]) == 1
    assert sorted((x.key, x.stage) for x in ready.failures) == [("b", "read"), ("c", "read")]
    again, = shard_batches(str(write_tar(tmp_path / "1.tar", members)), [tiny_model.plan],
                           DecodeOptions(BIG, 8, jpeg_to_device=True))
    (tmp_path / "1.tar").unlink()                          # gone before the device stage reads it
    gone = DeviceStage([tiny_model.plan], torch.device("cpu"), BIG).prepare(again)
    assert gone.pixels is None and {x.key for x in gone.failures} == {"a", "b", "c"}
    assert "cannot read the shard file again" in gone.failures[0].error


def test_two_models_share_one_decode_and_equal_single_runs(tmp_path, paintings):
    from artlens.pipeline.shards.write import write_shards
    from artlens.pipeline.shards.config import ShardsConfig
    write_shards(ShardsConfig(source=str(paintings), out=str(tmp_path / "s"), shard_size=5, progress=False))
    a = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)
    b = ModelSpec(model=TINY_64, pretrained="random", device="cpu", seed=0)
    both = ExtractConfig(shards=str(tmp_path / "s"), store=str(tmp_path / "both"), table="art", models=(a, b),
                         workers=2, progress=False)
    assert [t for t, _ in both.targets()] == ["art_artlens_tiny_vit_random", "art_artlens_tiny_vit_64_random"]
    summary = run_extract(both)
    assert summary.images == 14 and summary.tables_rows == {t: 14 for t, _ in both.targets()}
    for table, spec in both.targets():
        run_extract(ExtractConfig(shards=str(tmp_path / "s"), store=str(tmp_path / table), table=table,
                                  model=spec, workers=0, progress=False))
        with store.open(tmp_path / "both") as s1, store.open(tmp_path / table) as s2:
            q = f"SELECT key, embedding FROM {table} ORDER BY key"
            x, y = s1.sql(q).to_pydict(), s2.sql(q).to_pydict()
            assert x["key"] == y["key"] and np.allclose(x["embedding"], y["embedding"], atol=1e-6)
    with pytest.raises(ValueError, match="same table twice"):
        ExtractConfig(shards="s", store="st", table="t", models=(a, a))


def test_workers_claim_every_shard_exactly_once(tmp_path, extract):
    for i in range(7):
        write_tar(tmp_path / "s" / f"{i:05d}.tar", [(f"k{i}_{j}.jpg", _jpeg(40, 30, i * 10 + j)) for j in range(3)])
    summary = extract(tmp_path / "s", workers=3)
    assert (summary.images, summary.shards_committed) == (21, 7)
    with store.open(tmp_path / "store") as s:
        assert s.sql("SELECT count(*) AS n, count(DISTINCT key) AS d FROM t").to_pylist() == [{"n": 21, "d": 21}]


def test_decode_gpu_without_a_gpu_is_refused(tmp_path, capsys):
    from artlens.cli.main import main
    write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", _jpeg(40, 30))])
    code = main(["extract", "--shards", str(tmp_path / "s"), "--store", str(tmp_path / "st"), "--table", "t",
                 "--model", TINY_MODEL, "--pretrained", "random", "--device", "cpu", "--decode", "gpu",
                 "--no-progress"])
    assert code == 2 and "--decode gpu is not possible" in capsys.readouterr().err
