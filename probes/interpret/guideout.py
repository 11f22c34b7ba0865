"""`artlens guide`'s run and what it leaves behind: per image before.png, after.png and an amplified
difference.png; the curve plot (score and SSIM per step); result.json in the probes' result shape
(probes/result.py), also kept in the store as probe "guide" when the model came from a store table, so
`artlens report` shows it in its Guidance section."""
from __future__ import annotations

import math
import re
from dataclasses import asdict
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw

from artlens import store
from artlens.probes.report.curves import curve_figure
from artlens.probes.report.figures import DPI, STYLE
from artlens.probes.result import Result
from artlens.probes.stats import bootstrap_ci

from artlens.pipeline.models.load import LoadedModel
from artlens.probes.interpret.guide import GuideConfig, Trace, guide_images
from artlens.probes.interpret.names import OPTIMIZER_TEXTS
from artlens.probes.interpret.source import describe
from artlens.probes.interpret.view import ClipScore, read_image, to_numpy_image

#: Per-image numbers in result.json's per_class (one row per image) and the metric each mean becomes.
PER_IMAGE = ("score_before", "score_after", "score_gain", "noise_gain", "ssim", "l2", "rmse", "linf")


def _image(pixels: np.ndarray) -> Image.Image:
    """(H, W, 3) in [0, 1] → 8-bit RGB."""
    return Image.fromarray((np.clip(pixels, 0, 1) * 255).round().astype(np.uint8))


def amplification(linf: float) -> float:
    """Factor that stretches the largest change to half the grey range (at least 1, a whole number)."""
    return float(max(1, math.floor(0.5 / linf))) if linf > 0 else 1.0


def write_images(trace: Trace, folder: Path) -> dict:
    """before.png, after.png and difference.png (0.5 + factor · (after − before), grey = unchanged, with the
    factor written in its corner); returns their paths and the factor."""
    folder.mkdir(parents=True, exist_ok=True)
    before, after = to_numpy_image(trace.before), to_numpy_image(trace.after)
    factor = amplification(trace.changes[-1].linf)
    difference = _image(0.5 + factor * (after - before))
    draw, label = ImageDraw.Draw(difference), f"difference x{factor:g}"
    draw.rectangle(draw.textbbox((3, 3), label), fill=(0, 0, 0))
    draw.text((3, 3), label, fill=(255, 255, 255))
    files = {"before": _image(before), "after": _image(after), "difference": difference}
    for name, image in files.items():
        image.save(folder / f"{name}.png")
    return {**{name: str(folder / f"{name}.png") for name in files}, "amplification": factor}


def _row(trace: Trace) -> dict:
    last = trace.changes[-1]
    return {"score_before": trace.scores[0], "score_after": trace.scores[-1], "score_gain": trace.gain,
            "noise_gain": trace.noise.gain, "ssim": last.ssim, "l2": last.l2, "rmse": last.rmse, "linf": last.linf}


def item_names(traces: list[Trace]) -> list[str]:
    """`00-<file stem>`: unique, file-safe folder and row names, in input order."""
    return [f"{i:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', Path(t.image.path).stem)}" for i, t in enumerate(traces)]


def _curve(traces: list[Trace], names: list[str], text: str) -> dict:
    return {"x": list(range(len(traces[0].scores))), "xlabel": "ascent step",
            "caption": f'CLIP score toward "{text}" (solid) and SSIM to the original (dashed) per step; '
                       "thin lines: images, bold: mean",
            "left": {"label": "CLIP score (cosine)", "series": {n: t.scores for n, t in zip(names, traces)}},
            "right": {"label": "SSIM to the original",
                      "series": {n: [c.ssim for c in t.changes] for n, t in zip(names, traces)}}}


def build_result(cfg: GuideConfig, loaded: LoadedModel, traces: list[Trace], files: list[dict]) -> Result:
    names = item_names(traces)
    rows = {name: _row(t) for name, t in zip(names, traces)}
    table = cfg.source.table
    config = {"table": table, "text": cfg.text, "steps": cfg.steps, "lr": cfg.lr, "optimizer": cfg.optimizer,
              "noise_draws": cfg.noise_draws, "seed": cfg.seed}
    result = Result("guide", [table] if table else [], config, n=len(traces), per_class=rows)
    values = {key: np.array([r[key] for r in rows.values()]) for key in PER_IMAGE}
    values["gain_over_noise"] = values["score_gain"] - values["noise_gain"]
    baselines = {"score_gain": float(values["noise_gain"].mean()), "gain_over_noise": 0.0}
    for key in ("score_gain", "gain_over_noise", "score_before", "score_after", "ssim", "rmse", "linf", "l2"):
        v = values[key]
        ci = bootstrap_ci(lambda idx: v[idx].mean(), len(v), n_boot=cfg.n_boot, seed=cfg.seed)
        result.add(key, v.mean(), ci, baselines.get(key))
    result.details = {
        "text": cfg.text, "method": OPTIMIZER_TEXTS[cfg.optimizer],
        "noise_baseline": "seeded Gaussian noise with the L2 norm of each final perturbation, clamped to [0, 1]",
        "noise_ssim": float(np.mean([t.noise.ssim for t in traces])),
        "score_after_png": float(np.mean([t.score_after_png for t in traces])),
        **describe(loaded), "curve": _curve(traces, names, cfg.text),
        "images": [{"name": n, "path": t.image.path, "sha256": t.image.sha256, **f,
                    "noise_gains": t.noise.gains, "steps": [{"step": i, "score": s, **asdict(c)}
                                                            for i, (s, c) in enumerate(zip(t.scores, t.changes))]}
                   for n, t, f in zip(names, traces, files)]}
    return result


def write_curve(result: Result, path: Path) -> Path:
    with matplotlib.rc_context(STYLE):
        curve_figure(result.details["curve"]).savefig(path, dpi=DPI, metadata={"Software": None})
    return path


def result_name(cfg: GuideConfig) -> str:
    """The store's name for a guide result: one per table, text and step settings."""
    return f"guide__{cfg.source.table}__text={cfg.text}__steps={cfg.steps}__lr={cfg.lr:g}__{cfg.optimizer}"


def save(result: Result, cfg: GuideConfig, out: Path) -> list[Path]:
    """out/result.json, and the store's copy when the model came from a table."""
    paths = [result.save(out / "result.json")]
    if cfg.source.by_table:
        with store.open(cfg.source.store) as s:
            paths.append(s.save_result(result_name(cfg), result.to_dict()))
    return paths


def run_guide(cfg: GuideConfig, loaded: LoadedModel | None = None) -> tuple[Result, list[Path]]:
    """Guide every image, write the files under cfg.out and save the result (also into the store);
    returns the result and the paths it was saved to."""
    images = [read_image(path) for path in cfg.images]      # every image checked before any work
    loaded = loaded or cfg.source.load()
    scorer = ClipScore(loaded, cfg.text)
    traces = guide_images(scorer, images, cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    files = [write_images(t, out / name) for t, name in zip(traces, item_names(traces))]
    result = build_result(cfg, loaded, traces, files)
    result.details["curve_png"] = str(write_curve(result, out / "curve.png"))
    return result, save(result, cfg, out)
