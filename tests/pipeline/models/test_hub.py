"""`hf-hub:ORG/NAME` models from a Hugging Face hub cache the test builds (the layout huggingface_hub reads),
offline: parity with open_clip's own hf-hub loading, what the catalog records, pinned commits, and one-line
errors for what is missing or malformed."""
import hashlib
import io

import huggingface_hub.constants
import numpy as np
import open_clip
import pytest
import torch
from PIL import Image

import imagefactory as f
from artlens import store
from artlens.cli.main import main
from artlens.pipeline.models import hub
from artlens.pipeline.models.load import ModelError, load_for_table, load_model, spec_for_table
from artlens.pipeline.models.spec import ModelSpec, parse_models, table_slug
from artlens.pipeline.texts import encode_texts
from conftest import write_tar
from hubcache import PREPROCESS, build_hub_repo

REPO_ID = "artlens-test/tiny-clip"
MODEL = f"hf-hub:{REPO_ID}"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An offline hub cache holding the tiny model, named by HF_HUB_CACHE; huggingface_hub's own reading of
    HF_HUB_OFFLINE (done once at its import) set too, so open_clip's reference loading stays offline."""
    root = tmp_path / "hf-cache"
    build_hub_repo(root, REPO_ID, seed=5)   # not seed 0: the weights differ from `random` (seed 0)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return root


def reference(cache):
    """open_clip's own loading of the hub model from the cache."""
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL, cache_dir=str(cache))
    return model.eval(), preprocess


def test_loads_like_open_clip_from_the_hub_cache(cache):
    loaded = load_model(ModelSpec(model=MODEL, device="cpu", precision="fp32"))
    ref, ref_preprocess = reference(cache)
    assert loaded.name == loaded.ref == MODEL
    assert loaded.dim == 32
    snap = next((cache / "models--artlens-test--tiny-clip" / "snapshots").iterdir())
    weights = snap / "open_clip_model.safetensors"
    assert loaded.weights.label == f"hub@{snap.name}"
    assert loaded.weights.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert repr(loaded.preprocess) == repr(ref_preprocess) and f"mean={PREPROCESS['mean']}" in repr(loaded.preprocess)
    pixels = torch.rand(3, 3, 224, 224)
    with torch.no_grad():
        np.testing.assert_array_equal(loaded.model.encode_image(pixels).numpy(), ref.encode_image(pixels).numpy())
        tokens = open_clip.get_tokenizer(MODEL, cache_dir=str(cache))(["a painting", "a photo of a cat"])
        want = torch.nn.functional.normalize(ref.encode_text(tokens), dim=-1).numpy()
    np.testing.assert_allclose(encode_texts(loaded, ["a painting", "a photo of a cat"]), want, atol=1e-6)
    # not the tiny model's random init: the repository's weights were loaded
    rand = load_model(ModelSpec(model=MODEL, pretrained="random", device="cpu", precision="fp32"))
    with torch.no_grad():
        assert (rand.model.encode_image(pixels) - ref.encode_image(pixels)).abs().max() > 1e-3
    assert rand.weights.label == "random:seed=0" and rand.weights.sha256 is None


def test_pytorch_bin_weights_and_a_pinned_commit(tmp_path, monkeypatch):
    root = tmp_path / "c"
    old = build_hub_repo(root, REPO_ID, seed=1, weights="bin")
    new = build_hub_repo(root, REPO_ID, seed=2, weights="bin")   # refs/main now names this commit
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    latest = load_model(ModelSpec(model=MODEL, device="cpu", precision="fp32"))
    pinned = load_model(ModelSpec(model=MODEL, pretrained=f"hub@{old.name}", device="cpu", precision="fp32"))
    assert latest.weights.label == f"hub@{new.name}" and pinned.weights.label == f"hub@{old.name}"
    assert latest.weights.path.endswith("open_clip_pytorch_model.bin")
    assert latest.weights.sha256 != pinned.weights.sha256
    pixels = torch.rand(1, 3, 224, 224)
    with torch.no_grad():
        assert (latest.model.encode_image(pixels) - pinned.model.encode_image(pixels)).abs().max() > 1e-3


def test_the_default_tag_means_the_repositorys_weights_and_other_tags_are_refused(cache):
    assert ModelSpec(model=MODEL).pretrained == hub.HUB          # the default `openai`
    assert ModelSpec(model="ViT-B-32").pretrained == "openai"
    with pytest.raises(hub.HubModelError, match="does not apply to hf-hub:.*use hub") as info:
        load_model(ModelSpec(model=MODEL, pretrained="laion2b_s34b_b79k", device="cpu"))
    assert info.value.argument == "pretrained"
    with pytest.raises(hub.HubModelError, match="40-hex commit"):
        load_model(ModelSpec(model=MODEL, pretrained="hub@main; rm -rf /", device="cpu"))


@pytest.mark.parametrize("name", ["hf-hub:", "hf-hub:onlyname", "hf-hub:../../etc", "hf-hub:a/b/c",
                                  "hf-hub:org/na me", "hf-hub:-x/y"])
def test_malformed_hub_names_are_refused(cache, name):
    with pytest.raises(hub.HubModelError, match="is not hf-hub:ORG/NAME"):
        load_model(ModelSpec(model=name, device="cpu"))


def test_a_model_missing_from_the_offline_cache_is_one_line_naming_where(cache):
    with pytest.raises(hub.HubModelError) as info:
        load_model(ModelSpec(model="hf-hub:artlens-test/not-there", device="cpu"))
    message = str(info.value)
    assert "\n" not in message
    assert "open_clip_config.json" in message and str(cache / "models--artlens-test--not-there") in message
    assert "HF_HUB_OFFLINE is set" in message and "HF_HUB_CACHE" in message


def test_missing_weights_are_named_but_random_needs_only_the_config(tmp_path, monkeypatch):
    root = tmp_path / "c"
    snap = build_hub_repo(root, REPO_ID, weights=None)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.HubModelError, match="its weights file is not in the Hugging Face hub cache") as info:
        load_model(ModelSpec(model=MODEL, device="cpu"))
    assert str(snap) in str(info.value) and "\n" not in str(info.value)
    loaded = load_model(ModelSpec(model=MODEL, pretrained="random", seed=3, device="cpu"))
    assert loaded.dim == 32 and loaded.weights.label == "random:seed=3"


def test_another_checkpoint_loads_into_the_hub_architecture(cache, tmp_path):
    from hubcache import tiny_state_dict

    path = tmp_path / "finetuned.pt"
    torch.save(tiny_state_dict(seed=7), path)
    loaded = load_model(ModelSpec(model=MODEL, pretrained=str(path), device="cpu", precision="fp32"))
    assert loaded.weights.path == str(path.absolute())
    state = tiny_state_dict(seed=7)
    assert torch.equal(loaded.model.state_dict()["visual.proj"], state["visual.proj"])
    bad = tmp_path / "notes.bin"
    bad.write_text("not weights")
    with pytest.raises(ModelError, match="is not a checkpoint of weights"):
        load_model(ModelSpec(model=MODEL, pretrained=str(bad), device="cpu"))


@pytest.mark.parametrize("config, problem", [
    ({"preprocess_cfg": {}}, "no `model_cfg` object"),
    ("not json at all", "is not a JSON file"),
    ({"model_cfg": {"embed_dim": 32, "vision_cfg": {"layerz": 2}, "text_cfg": {}}}, "unknown key 'vision_cfg.layerz'"),
    ({"model_cfg": {"embed_dim": 32, "vision_cfg": {}, "text_cfg": {}}, "preprocess_cfg": [1]},
     "`preprocess_cfg` must be an object"),
])
def test_a_repository_whose_config_open_clip_cannot_use(tmp_path, monkeypatch, config, problem):
    root = tmp_path / "c"
    snap = build_hub_repo(root, REPO_ID, config={} if isinstance(config, str) else config)
    if isinstance(config, str):
        target = (snap / "open_clip_config.json").resolve()
        target.write_text(config)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.HubModelError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        load_model(ModelSpec(model=MODEL, device="cpu"))


def test_table_slug_and_models_lists_name_hub_models():
    assert table_slug(MODEL) == "artlens_test_tiny_clip"
    assert table_slug("hf-hub:timm/ViT-B-16-SigLIP") == "timm_vit_b_16_siglip"
    assert table_slug("ViT-B-32") == "vit_b_32" and table_slug("/x/artlens-tiny-vit.json") == "artlens_tiny_vit"
    specs = parse_models(f"ViT-B-32:openai,{MODEL},{MODEL}:random,hf-hub:a/b:hub@{'0' * 40}", ModelSpec())
    assert [(s.model, s.pretrained) for s in specs] == [
        ("ViT-B-32", "openai"), (MODEL, "hub"), (MODEL, "random"), ("hf-hub:a/b", f"hub@{'0' * 40}")]


@pytest.mark.slow
def test_catalog_records_the_commit_and_the_table_loads_its_own_weights_again(cache, tmp_path, capsys):
    shards = write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg(160, 120)), ("b.jpg", f.jpeg(90, 140))])
    root = tmp_path / "store"
    args = ["extract", "--shards", str(shards.parent), "--store", str(root), "--table", "t", "--model", MODEL,
            "--device", "cpu", "--precision", "fp32", "--workers", "0", "--no-progress"]
    assert main(args) == 0, capsys.readouterr().err
    with store.open(root) as s:
        entry = s.entry("t")
        rows = s.sql("SELECT key, embedding FROM t ORDER BY key").to_pylist()
    snap = next((cache / "models--artlens-test--tiny-clip" / "snapshots").iterdir())
    assert (entry.model, entry.model_ref, entry.pretrained) == (MODEL, MODEL, f"hub@{snap.name}")
    assert entry.checkpoint_sha256 == hashlib.sha256((snap / "open_clip_model.safetensors").read_bytes()).hexdigest()
    # parity: open_clip's hf-hub model and its own preprocessing on the same images
    ref, preprocess = reference(cache)
    images = {"a": f.jpeg(160, 120), "b": f.jpeg(90, 140)}
    assert [r["key"] for r in rows] == ["a", "b"]
    for row in rows:
        with torch.no_grad():
            x = preprocess(Image.open(io.BytesIO(images[row["key"]])).convert("RGB")).unsqueeze(0)
            want = torch.nn.functional.normalize(ref.encode_image(x), dim=-1)[0].numpy()
        got = np.asarray(row["embedding"], dtype=np.float32)
        np.testing.assert_allclose(got, want, atol=1e-5)
    # the table's model again, from the commit the catalog names
    assert spec_for_table(entry).pretrained == f"hub@{snap.name}"
    assert load_for_table(entry, device="cpu").weights.sha256 == entry.checkpoint_sha256
    # texts for that table: same model, weights and dim, so --for-table accepts them
    prompts = tmp_path / "p.csv"
    prompts.write_text("label,prompt\ncat,a photo of a cat\ndog,a photo of a dog\n")
    assert main(["texts", "--store", str(root), "--table", "words", "--prompts", str(prompts), "--model", MODEL,
                 "--device", "cpu", "--for-table", "t"]) == 0, capsys.readouterr().err
    with store.open(root) as s:
        text = s.entry("words")
        got = np.array(s.sql("SELECT embedding FROM words ORDER BY key").column(0).to_pylist(), dtype=np.float32)
    assert (text.model, text.pretrained, text.checkpoint_sha256) == (MODEL, entry.pretrained, entry.checkpoint_sha256)
    assert text.preprocess == f"open_clip tokenizer {MODEL}"   # no cache path in what identifies the table
    with torch.no_grad():
        tokens = open_clip.get_tokenizer(MODEL, cache_dir=str(cache))(["a photo of a cat", "a photo of a dog"])
        want = torch.nn.functional.normalize(ref.encode_text(tokens), dim=-1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    # the other model loaders: neighbours by image and by text (the table's own model), interpret's source
    import artlens
    from artlens.probes.interpret.source import ModelSource

    (tmp_path / "a.jpg").write_bytes(images["a"])
    hits = artlens.neighbors(root, "t", image=str(tmp_path / "a.jpg"), k=2, device="cpu").to_pylist()
    assert hits[0]["key"] == "a" and hits[0]["score"] > 0.9999
    by_text = artlens.neighbors(root, "t", text="a photo of a cat", k=2, device="cpu").to_pylist()
    assert {h["key"] for h in by_text} == {"a", "b"}
    source = ModelSource(model=MODEL, pretrained="hub", device="cpu").load()
    assert source.weights.sha256 == entry.checkpoint_sha256


def test_the_cli_names_the_missing_model_in_one_line(cache, tmp_path, capsys):
    code = main(["texts", "--store", str(tmp_path / "st"), "--table", "w", "--prompts", "sample-style",
                 "--model", "hf-hub:nobody/nothing", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert "hf-hub:nobody/nothing" in err and str(cache) in err and "--cache-dir" in err
    assert not (tmp_path / "st").exists()


@pytest.mark.slow
def test_a_fresh_process_reads_the_cache_the_environment_names(cache, tmp_path):
    """`artlens texts` as its own process, given only HF_HUB_CACHE and HF_HUB_OFFLINE in its environment."""
    import os
    import subprocess
    import sys

    prompts = tmp_path / "p.csv"
    prompts.write_text("label,prompt\ncat,a photo of a cat\n")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "no-home")}
    done = subprocess.run([sys.executable, "-m", "artlens", "texts", "--store", str(tmp_path / "st"), "--table",
                           "w", "--prompts", str(prompts), "--model", MODEL, "--device", "cpu"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with store.open(tmp_path / "st") as s:
        got = np.array(s.sql("SELECT embedding FROM w").column(0).to_pylist(), dtype=np.float32)
        assert s.entry("w").pretrained.startswith("hub@")
    ref, _ = reference(cache)
    with torch.no_grad():
        tokens = open_clip.get_tokenizer(MODEL, cache_dir=str(cache))(["a photo of a cat"])
        want = torch.nn.functional.normalize(ref.encode_text(tokens), dim=-1).numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
