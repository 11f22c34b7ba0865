"""Weights the normal open_clip ways (hub cache, local checkpoint, random), and fast, helpful failure."""
import hashlib

import numpy as np
import pytest
import torch
from open_clip import pretrained as oc_pretrained

import imagefactory as f
from artlens import store
from conftest import TINY_MODEL, write_tar
from artlens.cli.main import main
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.extract.run import run_extract
from artlens.pipeline.models.load import load_model
from artlens.pipeline.models.weights import WeightsError, resolve_weights


def embed_one(tmp_path, pretrained, table, **spec):
    shards = write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg(128, 96))]).parent
    cfg = ExtractConfig(shards=str(shards), store=str(tmp_path / "store"), table=table, workers=0,
                        progress=False, model=ModelSpec(model=TINY_MODEL, pretrained=pretrained, **spec))
    run_extract(cfg)
    with store.open(tmp_path / "store") as s:
        emb = np.array(s.sql(f"SELECT embedding FROM {table}").column(0).to_pylist()[0])
        entry = s.sql(f"SELECT pretrained, checkpoint_sha256 FROM catalog WHERE name = '{table}'").to_pylist()[0]
    return emb, entry


@pytest.mark.timeout(60)
def test_unavailable_weights_fail_fast_naming_three_ways(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache
    shards = write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg())]).parent
    code = main(["extract", "--shards", str(shards), "--store", str(tmp_path / "st"), "--table", "t",
                 "--model", "ViT-B-32", "--pretrained", "openai", "--cache-dir", str(tmp_path / "hf")])
    err = capsys.readouterr().err
    assert code == 2
    assert "hub cache" in err and "local checkpoint" in err and "--pretrained random" in err
    assert not (tmp_path / "st").exists()  # nothing written before the model loaded


def test_unknown_tag_lists_known_tags():
    with pytest.raises(WeightsError, match="known tags for ViT-B-32: .*'openai'"):
        resolve_weights("ViT-B-32", "no-such-tag")


def test_random_weights_are_seeded(tmp_path):
    a, entry = embed_one(tmp_path, "random", "a", seed=0)
    b, _ = embed_one(tmp_path, "random", "b", seed=0)
    c, _ = embed_one(tmp_path, "random", "c", seed=1)
    assert entry == {"pretrained": "random:seed=0", "checkpoint_sha256": None}
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def save_tiny_checkpoint(path, seed=0):
    model = load_model(ModelSpec(model=TINY_MODEL, pretrained="random", seed=seed, device="cpu")).model
    torch.save(model.state_dict(), path)
    return path


def test_local_checkpoint_path_loads_and_is_fingerprinted(tmp_path):
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.pt", seed=0)
    from_file, entry = embed_one(tmp_path, str(ckpt), "ckpt")
    seeded, _ = embed_one(tmp_path, "random", "rand", seed=0)
    np.testing.assert_allclose(from_file, seeded, atol=1e-6)
    assert entry["checkpoint_sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert entry["pretrained"] == str(ckpt)


def test_pretrained_tag_from_the_hub_cache_offline(tmp_path, monkeypatch):
    """A tag whose weights sit in the Hugging Face hub cache loads with no network at all."""
    from safetensors.torch import save_file

    model = load_model(ModelSpec(model=TINY_MODEL, pretrained="random", seed=3, device="cpu")).model
    repo = tmp_path / "hub" / "models--artlens--tiny-test"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, snapshot / "open_clip_model.safetensors")
    monkeypatch.setitem(oc_pretrained._PRETRAINED, "artlens-tiny-vit",
                        {"tinytag": oc_pretrained._pcfg(hf_hub="artlens/tiny-test/")})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    weights = resolve_weights(TINY_MODEL, "tinytag", cache_dir=str(tmp_path / "hub"))
    assert weights.path.endswith("open_clip_model.safetensors") and weights.label == "tinytag"
    assert weights.preprocess_overrides["interpolation"] == "bicubic"
    tagged, entry = embed_one(tmp_path, "tinytag", "tag", cache_dir=str(tmp_path / "hub"))
    seeded, _ = embed_one(tmp_path, "random", "rand", seed=3)
    np.testing.assert_allclose(tagged, seeded, atol=1e-6)
    assert entry["pretrained"] == "tinytag" and len(entry["checkpoint_sha256"]) == 64


def test_checkpoint_hash_runs_beside_the_build_and_is_the_files_sha256(tmp_path):
    from concurrent.futures import Future

    path = tmp_path / "w.bin"
    path.write_bytes(np.random.default_rng(0).bytes(3 << 20))
    weights = resolve_weights(TINY_MODEL, str(path))
    assert isinstance(weights.digest, Future)  # hashed on the background thread
    assert weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_zip_checkpoints_load_mapped_and_legacy_ones_as_before(tmp_path):
    """torch.save's zip format loads through mmap (torch's serialization option, set only while open_clip
    loads); a legacy pickle checkpoint, which torch cannot map, loads as it did, to the same weights."""
    import open_clip
    from torch.utils.serialization import config

    from artlens.pipeline.models.load import mapped_loads

    open_clip.add_model_config(TINY_MODEL)
    torch.manual_seed(3)
    state = open_clip.create_model("artlens-tiny-vit").state_dict()
    zipped, legacy = tmp_path / "zip.pt", tmp_path / "legacy.pt"
    torch.save(state, zipped)
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    with mapped_loads(str(zipped)):
        assert config.load.mmap
    assert not config.load.mmap
    for path in (zipped, legacy):
        loaded = load_model(ModelSpec(model=TINY_MODEL, pretrained=str(path), device="cpu"))
        assert all(torch.equal(state[k], v) for k, v in loaded.model.state_dict().items()), path
        assert loaded.weights.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
