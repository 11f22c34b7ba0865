"""`artlens saliency`: integrated gradients (completeness within captum's delta) and attention rollout over
the model's view, the PNG and its sidecar, and clear refusals (exit 2)."""
import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

import imagefactory as f
from conftest import TINY_MODEL
from guidancekit import imported_table, small_painting, tiny_table
from artlens.cli.main import main
from artlens.probes.interpret import ig, rollout
from artlens.probes.interpret.heatmap import png_size
from artlens.probes.interpret.names import BASELINE_TEXTS, METHOD_CITATIONS
from artlens.probes.interpret.saliency import METHODS, SaliencyConfig, run_saliency, saliency_map
from artlens.probes.interpret.source import ModelSource
from artlens.probes.interpret.view import ClipScore, read_image
from artlens.pipeline.texts import encode_texts

SPEC = ModelSource(model=TINY_MODEL, pretrained="random", device="cpu")
TEXT = "a cubist painting of a dancer"


def config(tmp_path, **kw) -> SaliencyConfig:
    kw.setdefault("image", str(small_painting()))
    return SaliencyConfig(text=kw.pop("text", TEXT), out=str(tmp_path / "map.png"), source=SPEC, **kw)


def test_registries_match_their_documented_names():
    assert METHODS.keys() == METHOD_CITATIONS.keys() and ig.BASELINES.keys() == BASELINE_TEXTS.keys()


def test_view_score_is_the_extraction_embedding_cosine(tiny_model):
    image = read_image(small_painting()).image
    scorer = ClipScore(tiny_model, TEXT)
    view = scorer.view.view(image)
    assert view.shape == (3, 224, 224) and 0 <= float(view.min()) and float(view.max()) <= 1
    expected = float(tiny_model.embed(tiny_model.preprocess(image)[None])[0] @ encode_texts(tiny_model, [TEXT])[0])
    assert scorer.score(view) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("baseline", list(ig.BASELINES))
def test_ig_completeness_png_and_sidecar(tmp_path, tiny_model, baseline):
    cfg = config(tmp_path, steps=24, baseline=baseline)
    sidecar = run_saliency(cfg, tiny_model)
    png = Image.open(cfg.out)
    assert png.format == "PNG" and png.size == png_size()
    saved = json.loads((tmp_path / "map.json").read_text())
    assert saved == json.loads(json.dumps(sidecar))
    assert saved["method"] == "ig" and "Sundararajan" in saved["citation"] and saved["steps"] == 24
    assert saved["image_sha256"] == hashlib.sha256(small_painting().read_bytes()).hexdigest()
    assert saved["model"] == tiny_model.name and saved["weights"] == "random:seed=0"
    assert saved["view"]["height"] == saved["view"]["width"] == 224 and saved["baseline"] == baseline
    # completeness: attributions sum to score(image) - score(baseline), up to captum's convergence delta
    gap = saved["score"] - saved["baseline_score"]
    assert abs(saved["attribution_sum"] - gap) <= abs(saved["convergence_delta"]) + 1e-5
    assert abs(saved["convergence_delta"]) < 0.05 * abs(gap)
    assert saved["map"]["sum"] == pytest.approx(saved["attribution_sum"], rel=1e-3)


def test_blur_and_black_baselines_start_from_different_images(tiny_model):
    scorer = ClipScore(tiny_model, TEXT)
    view = scorer.view.view(read_image(small_painting()).image)
    black, blur = ig.BASELINES["black"](view), ig.BASELINES["blur"](view)
    assert float(black.abs().max()) == 0
    assert blur.shape == view.shape and 0 < float((blur - view).abs().mean()) < float(view.mean())


@pytest.mark.parametrize("method", list(METHODS))
def test_different_texts_give_different_maps(tmp_path, tiny_model, method):
    image = read_image(small_painting()).image
    maps = []
    for text in (TEXT, "a photograph of a red sports car"):
        scorer = ClipScore(tiny_model, text)
        found = saliency_map(scorer, scorer.view.view(image), config(tmp_path, method=method, steps=8))
        assert found.values.shape == (224, 224) and np.isfinite(found.values).all()
        maps.append(found.values.ravel())
    assert np.corrcoef(maps[0], maps[1])[0, 1] < 0.99


def test_rollout_relevance_hooks_and_score(tiny_model):
    scorer = ClipScore(tiny_model, TEXT)
    view = scorer.view.view(read_image(small_painting()).image)
    heat, score = rollout.rollout(scorer, view)
    assert heat.shape == (224, 224) and float(heat.min()) >= 0 and float(heat.max()) > float(heat.min())
    assert score == pytest.approx(scorer.score(view), abs=1e-5)  # the hooked forward computes the same score
    blocks = rollout.check_vit(tiny_model.model.visual)
    assert len(blocks) == 2 and all(not m._forward_hooks for m in blocks)  # hooks removed afterwards


def test_explicit_attention_matches_torch(tiny_model):
    mha = tiny_model.model.visual.transformer.resblocks[0].attn
    x = torch.randn(2, 50, mha.embed_dim, generator=torch.Generator().manual_seed(0))
    probs, out = rollout.explicit_attention(mha, x)
    with torch.no_grad():
        expected, weights = mha(x, x, x, need_weights=True, average_attn_weights=False)
    assert torch.allclose(out, expected, atol=1e-5) and torch.allclose(probs, weights, atol=1e-6)


def test_cli_with_the_tables_own_model(tmp_path, extract, capsys):
    store_dir = tiny_table(extract, tmp_path)
    out = tmp_path / "maps" / "rollout.png"
    code = main(["saliency", "--image", str(small_painting()), "--text", TEXT, "--store", str(store_dir),
                 "--table", "t", "--out", str(out), "--method", "rollout", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert "saliency (rollout): cosine" in capsys.readouterr().out
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["table"] == "t" and "Chefer" in sidecar["citation"] and sidecar["convergence_delta"] is None
    assert Image.open(out).size == png_size()


def test_rollout_refuses_a_resnet_tower(tmp_path, capsys):
    resnet = tmp_path / "tiny-rn.json"
    resnet.write_text(json.dumps({"embed_dim": 16, "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1],
                                                                   "width": 8},
                                  "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32,
                                               "heads": 2, "layers": 1}}))
    code = main(["saliency", "--image", str(small_painting()), "--text", TEXT, "--model", str(resnet),
                 "--pretrained", "random", "--out", str(tmp_path / "m.png"), "--method", "rollout",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "needs a ViT image tower" in err and "ModifiedResNet" in err and "--method ig" in err
    assert not (tmp_path / "m.png").exists()


#: case → (arguments replaced, arguments dropped, what the error says); "{tmp}" is the test's folder.
BAD_INPUT = {
    "missing": ({"--image": "{tmp}/nowhere.jpg"}, (), "does not exist"),
    "corrupt": ({"--image": "{tmp}/bad.jpg"}, (), "bad.jpg: cannot decode"),
    "imported": ({"--store": "{tmp}/store", "--table": "imported"}, ("--model", "--pretrained"), "was imported"),
    "not-png": ({"--out": "{tmp}/m.jpg"}, (), "--out must name a .png file"),
    "both-models": ({"--store": "{tmp}/store", "--table": "imported"}, (), "not both or neither"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_a_clear_error(tmp_path, capsys, case):
    (tmp_path / "bad.jpg").write_bytes(f.corrupt_jpeg())
    imported_table(tmp_path)
    replaced, dropped, message = BAD_INPUT[case]
    args = {"--image": str(small_painting()), "--text": TEXT, "--out": str(tmp_path / "m.png"),
            "--model": TINY_MODEL, "--pretrained": "random", "--device": "cpu"}
    args.update({k: v.format(tmp=tmp_path) for k, v in replaced.items()})
    code = main(["saliency", *[x for k, v in args.items() if k not in dropped for x in (k, v)]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and err.startswith("artlens saliency: error:") and "\n" not in err
    assert not (tmp_path / "m.png").exists()


def test_cli_explains_a_rows_painting_and_keeps_the_map_in_the_store(tmp_path, extract, capsys):
    from artlens import store
    from artlens.store.layout import StoreLayout

    store_dir = tiny_table(extract, tmp_path)
    code = main(["saliency", "--store", str(store_dir), "--table", "t", "--key", "p", "--text", TEXT,
                 "--method", "rollout", "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    with store.open(store_dir) as s:
        (found,) = s.saliency_maps("t", "p")
        painting, _ = s.image_bytes("t", "p")
        assert s.saliency_maps("t", "other") == []
    png = StoreLayout.at(store_dir).saliency_path("t", "p", "rollout", TEXT)
    assert (found["method"], found["text"], found["png"]) == ("rollout", TEXT, str(png)) and png.is_file()
    sidecar = json.loads(png.with_suffix(".json").read_text())
    assert sidecar["key"] == "p" and sidecar["image_sha256"] == hashlib.sha256(painting).hexdigest()
    assert Image.open(png).size == png_size()
    # the same map as --image of the same painting file
    (tmp_path / "p.png").write_bytes(painting)
    out = tmp_path / "file.png"
    assert main(["saliency", "--store", str(store_dir), "--table", "t", "--image", str(tmp_path / "p.png"),
                 "--text", TEXT, "--method", "rollout", "--device", "cpu", "--out", str(out)]) == 0
    assert json.loads(out.with_suffix(".json").read_text())["score"] == found["score"] == sidecar["score"]


#: case → (arguments, what the error says); "{store}" is a store with the tiny table `t` and an imported table.
BAD_KEYS = {
    "no-store": (["--key", "p", "--model", TINY_MODEL, "--pretrained", "random"], "--key names a row of a store table"),
    "unknown-key": (["--key", "nope", "--store", "{store}", "--table", "t"], "'nope'"),
    "unknown-table": (["--key", "p", "--store", "{store}", "--table", "nope"], "no table 'nope'"),
    "no-images": (["--key", "a", "--store", "{store}", "--table", "imported"], "no images"),
    "key-and-image": (["--key", "p", "--image", "{store}/x.png", "--store", "{store}", "--table", "t"],
                      "not both or neither"),
    "no-out": (["--image", "x.png", "--model", TINY_MODEL, "--pretrained", "random"], "--out"),
}


@pytest.mark.parametrize("case", list(BAD_KEYS))
def test_bad_keys_are_clear_errors(tmp_path, extract, capsys, case):
    store_dir = tiny_table(extract, tmp_path)
    imported_table(tmp_path)   # the same store: tmp_path / "store"
    args, message = BAD_KEYS[case]
    code = main(["saliency", "--text", TEXT, "--device", "cpu", *[a.format(store=store_dir) for a in args]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and err.startswith("artlens saliency: error:") and "\n" not in err, err
    assert not (store_dir / "results" / "saliency").exists()
