"""`artlens guide`: gradient ascent on the view pixels raises the CLIP score while SSIM stays high, beats
noise of the same L2 norm, writes its images, curve and result, and lands in `artlens report`."""
import json

import numpy as np
import pytest
from PIL import Image

import imagefactory as f
from artlens import store
from conftest import TINY_MODEL
from guidancekit import imported_table, procedural_paintings, small_painting, tiny_table
from artlens.cli.main import main
from artlens.probes.interpret.guide import OPTIMIZERS, Change, GuideConfig, noise_baseline
from artlens.probes.interpret.guideout import run_guide
from artlens.probes.interpret.names import OPTIMIZER_TEXTS
from artlens.probes.interpret.source import ModelSource
from artlens.probes.interpret.view import ClipScore, image_paths, read_image, to_numpy_image
from artlens.probes.result import Result

SPEC = ModelSource(model=TINY_MODEL, pretrained="random", device="cpu")
TEXT = "a cubist painting of a dancer"


@pytest.fixture
def guide(tmp_path, tiny_model):
    """guide(images, out="out", **config) → (config, result, saved paths), with the session's tiny model."""
    def run(images, out="out", **kw):
        cfg = GuideConfig(images=tuple(str(p) for p in images), text=TEXT, out=str(tmp_path / out), source=SPEC,
                          **kw)
        return cfg, *run_guide(cfg, tiny_model)
    return run


def test_optimizers_match_their_documented_names():
    assert OPTIMIZERS.keys() == OPTIMIZER_TEXTS.keys()


def test_ascent_raises_the_score_keeps_ssim_high_and_beats_noise(guide):
    cfg, result, saved = guide([small_painting()], steps=5)
    row = next(iter(result.per_class.values()))
    steps = result.details["images"][0]["steps"]
    scores = [s["score"] for s in steps]
    assert len(steps) == 6 and scores[-1] > scores[0] + 0.05 and np.all(np.diff(scores) > 0)
    assert 0.9 < row["ssim"] < 1 and steps[0]["ssim"] == pytest.approx(1.0) and steps[0]["l2"] == 0
    assert row["linf"] <= 5 / 255 + 1e-6 and row["rmse"] == pytest.approx(row["l2"] / np.sqrt(3 * 224 * 224))
    noise = result.details["images"][0]["noise_gains"]
    assert len(noise) == cfg.noise_draws and row["score_gain"] > 10 * max(abs(g) for g in noise)
    assert result.metrics["gain_over_noise"].value > 0 and result.baseline["score_gain"] == row["noise_gain"]
    # lr = 1/255 keeps pixels on the 8-bit grid, so after.png scores what the ascent reached
    assert result.details["score_after_png"] == pytest.approx(row["score_after"], abs=1e-4)


def test_files_and_result_json(tmp_path, guide, tiny_model):
    cfg, result, saved = guide([small_painting()], steps=3)
    out = tmp_path / "out"
    folder = out / "00-picabia_udnie_1913"
    images = {n: Image.open(folder / f"{n}.png") for n in ("before", "after", "difference")}
    assert all(im.size == (224, 224) and im.mode == "RGB" for im in images.values())
    scorer = ClipScore(tiny_model, TEXT)
    view = scorer.view.view(read_image(small_painting()).image)
    assert np.array_equal(np.asarray(images["before"]), (to_numpy_image(view) * 255).round().astype(np.uint8))
    factor = result.details["images"][0]["amplification"]
    assert factor == np.floor(0.5 / result.per_class["00-picabia_udnie_1913"]["linf"]) and factor > 1
    assert Image.open(out / "curve.png").format == "PNG"
    assert saved == [out / "result.json"]  # no table, nothing saved into a store
    loaded = Result.from_dict(json.loads((out / "result.json").read_text()))
    assert loaded.probe == "guide" and loaded.n == 1 and loaded.config["text"] == TEXT
    assert {"score_gain", "ssim", "l2", "rmse", "linf"} <= loaded.metrics.keys()


def test_spread_over_images_is_seeded(tmp_path, guide):
    folder = procedural_paintings(tmp_path / "paintings", 4)
    images = image_paths([str(folder)])  # a folder stands for its images, sorted
    assert [p.name for p in images] == sorted(p.name for p in folder.iterdir())
    cfg, result, _ = guide(images, steps=2, n_boot=200)
    again = guide(images, out="again", steps=2, n_boot=200)[1]
    gain = result.metrics["score_gain"]
    assert result.n == 4 and len(result.per_class) == 4 and gain.ci[0] < gain.value < gain.ci[1]
    assert all(r["score_gain"] > r["noise_gain"] for r in result.per_class.values())
    assert len(result.details["curve"]["left"]["series"]) == 4
    strip = {k: v for k, v in result.to_dict().items() if k != "details"}
    assert strip == {k: v for k, v in again.to_dict().items() if k != "details"}


def test_adam_also_ascends(guide):
    _, result, _ = guide([small_painting()], steps=3, optimizer="adam", lr=0.005)
    assert result.metrics["score_gain"].value > 0 and "Adam" in result.details["method"]


def test_change_and_noise_measures(tiny_model):
    scorer = ClipScore(tiny_model, TEXT)
    view = scorer.view.view(read_image(small_painting()).image)
    same = Change.between(view, view)
    assert same.l2 == same.linf == 0 and same.ssim == pytest.approx(1.0)
    noise = noise_baseline(scorer, view, l2=5.0, draws=3, seed=0)
    assert len(noise.gains) == 3 and 3.0 < noise.l2 <= 5.0 + 1e-4 and noise.ssim < 1  # clamping shortens it
    assert noise.gains == noise_baseline(scorer, view, l2=5.0, draws=3, seed=0).gains
    assert noise.gains != noise_baseline(scorer, view, l2=5.0, draws=3, seed=1).gains


def test_cli_saves_into_the_store_and_report_shows_guidance(tmp_path, extract, capsys):
    store_dir = tiny_table(extract, tmp_path)
    code = main(["guide", "--image", str(small_painting()), "--text", TEXT, "--steps", "2", "--out",
                 str(tmp_path / "g"), "--store", str(store_dir), "--table", "t", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0 and "guide: 1 image(s), 2 steps" in out and "noise of the same L2" in out
    with store.open(store_dir) as s:
        (saved,) = s.results()
    assert saved["probe"] == "guide" and saved["tables"] == ["t"] and saved["config"]["text"] == TEXT
    assert main(["report", "--store", str(store_dir), "--out", str(tmp_path / "report")]) == 0
    md = (tmp_path / "report" / "report.md").read_text()
    guidance = md.split("## Guidance")[1]
    assert "guide: t" in guidance and "| score_gain |" in guidance and "gain_over_noise" in guidance
    curve = tmp_path / "report" / "figures" / "guide__t.curve.png"
    assert curve.is_file() and "figures/guide__t.curve.png" in guidance and "SSIM" in guidance


#: case → (arguments replaced, arguments dropped, what the error says); "{tmp}" is the test's folder.
BAD_INPUT = {
    "missing": ({"--image": "{tmp}/nowhere.jpg"}, (), "does not exist"),
    "corrupt": ({"--image": "{tmp}/bad.jpg"}, (), "bad.jpg: cannot decode"),
    "empty-folder": ({"--image": "{tmp}/empty"}, (), "holds no images"),
    "imported": ({"--store": "{tmp}/store", "--table": "imported"}, ("--model", "--pretrained"), "was imported"),
    "no-model": ({}, ("--model", "--pretrained"), "not both or neither"),
    "zero-steps": ({"--steps": "0"}, (), "--steps and --noise-draws must be at least 1"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_a_clear_error(tmp_path, capsys, case):
    (tmp_path / "bad.jpg").write_bytes(f.corrupt_jpeg())
    (tmp_path / "empty").mkdir()
    imported_table(tmp_path)
    replaced, dropped, message = BAD_INPUT[case]
    args = {"--image": str(small_painting()), "--text": TEXT, "--out": str(tmp_path / "g"), "--steps": "2",
            "--model": TINY_MODEL, "--pretrained": "random", "--device": "cpu"}
    args.update({k: v.format(tmp=tmp_path) for k, v in replaced.items()})
    code = main(["guide", *[x for k, v in args.items() if k not in dropped for x in (k, v)]])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and err.startswith("artlens guide: error:") and "\n" not in err
    assert not (tmp_path / "g" / "result.json").exists()
