"""`artlens saliency` and `artlens guide`: arguments → one frozen config → run → a few lines of summary.
Building the arguments imports only `names` (plain data), so `artlens --help` does not load torch."""
from __future__ import annotations

import argparse

from artlens.probes.interpret.names import BASELINE_TEXTS, METHOD_CITATIONS, OPTIMIZER_TEXTS, choices_help


def _source_arguments(p: argparse.ArgumentParser) -> None:
    model = p.add_argument_group("model (a store table's own, or an open_clip model and weights)")
    model.add_argument("--store", help="store whose --table's model and weights score the images")
    model.add_argument("--table", help="table in --store (its catalog records the model and weights)")
    model.add_argument("--model", help="open_clip model name or JSON model config path (instead of a table)")
    model.add_argument("--pretrained", help="open_clip tag, checkpoint path, or 'random' (with --model)")
    model.add_argument("--seed", type=int, default=0, help="seed for --pretrained random and for noise draws")
    model.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    model.add_argument("--cache-dir", help="open_clip/hub cache directory for weights")


def _source(a: argparse.Namespace):
    from artlens.probes.interpret.source import ModelSource

    return ModelSource(store=a.store, table=a.table, model=a.model, pretrained=a.pretrained, seed=a.seed,
                       device=a.device, cache_dir=a.cache_dir)


# ------------------------------------------------------------------ saliency
def saliency_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", required=True, help="image file (decoded like extraction: EXIF, odd modes)")
    p.add_argument("--text", required=True, help="the words whose image–text score is explained")
    p.add_argument("--out", required=True, help="FILE.png for the heatmap; FILE.json gets the numbers")
    p.add_argument("--method", default="ig", choices=list(METHOD_CITATIONS),
                   help=choices_help(METHOD_CITATIONS, "ig"))
    p.add_argument("--steps", type=int, default=50, help="ig: points on the path from the baseline (default 50)")
    p.add_argument("--baseline", default="black", choices=list(BASELINE_TEXTS),
                   help="ig: start of the path: " + choices_help(BASELINE_TEXTS, "black"))
    p.add_argument("--batch-size", type=int, default=16, help="ig: path points per forward pass")
    _source_arguments(p)


def saliency_run(a: argparse.Namespace) -> int:
    from artlens.probes.interpret.saliency import SaliencyConfig, run_saliency, sidecar_path

    cfg = SaliencyConfig(image=a.image, text=a.text, out=a.out, source=_source(a), method=a.method,
                         steps=a.steps, baseline=a.baseline, batch_size=a.batch_size)
    found = run_saliency(cfg)
    delta = "" if found["convergence_delta"] is None else \
        f"; convergence delta {found['convergence_delta']:.2e} over {found['steps']} steps"
    print(f"saliency ({cfg.method}): cosine {found['score']:.4f} for {cfg.text!r}{delta}")
    print(f"heatmap: {cfg.out}; numbers: {sidecar_path(cfg.out)}")
    return 0


# ------------------------------------------------------------------ guide
def guide_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", required=True, nargs="+", action="extend",
                   help="image files or folders of images (repeatable)")
    p.add_argument("--text", required=True, help="the words the pixels are pushed toward")
    p.add_argument("--steps", type=int, default=10, help="ascent steps (default 10)")
    p.add_argument("--out", required=True, help="folder for before/after/difference PNGs, curve.png, result.json")
    p.add_argument("--lr", type=float, default=1 / 255, help="step size in [0, 1] pixel units (default 1/255)")
    p.add_argument("--optimizer", default="sign", choices=list(OPTIMIZER_TEXTS),
                   help=choices_help(OPTIMIZER_TEXTS, "sign"))
    p.add_argument("--noise-draws", type=int, default=5,
                   help="seeded Gaussian draws of the final perturbation's L2 norm (the noise baseline)")
    _source_arguments(p)


def guide_run(a: argparse.Namespace) -> int:
    from artlens.probes.interpret.guide import GuideConfig
    from artlens.probes.interpret.guideout import run_guide
    from artlens.probes.interpret.view import image_paths

    cfg = GuideConfig(images=tuple(str(p) for p in image_paths(a.image)), text=a.text, out=a.out,
                      source=_source(a), steps=a.steps, lr=a.lr, optimizer=a.optimizer,
                      noise_draws=a.noise_draws, seed=a.seed)
    result, saved = run_guide(cfg)
    m, base = result.metrics, result.baseline
    print(f"guide: {result.n} image(s), {cfg.steps} steps toward {cfg.text!r}: score "
          f"{m['score_before'].value:.4f} -> {m['score_after'].value:.4f} (gain {m['score_gain'].value:+.4f}, "
          f"95% CI [{m['score_gain'].ci[0]:+.4f}, {m['score_gain'].ci[1]:+.4f}]; noise of the same L2 "
          f"{base['score_gain']:+.4f})")
    print(f"change: SSIM {m['ssim'].value:.4f}, RMSE {m['rmse'].value:.4f}, Linf {m['linf'].value:.4f} "
          f"(= {m['linf'].value * 255:.1f}/255)")
    print(f"files under {cfg.out}; result saved to {', '.join(str(p) for p in saved)}")
    return 0
