"""`artlens saliency` and `artlens guide`: arguments → one frozen config → run → a few lines of summary.
Their flag defaults are read from the configs (`probes/interpret/config.py`, light: no torch); `main` declares
only the chosen command's arguments."""
from __future__ import annotations

import argparse

from artlens.probes.interpret.names import BASELINE_TEXTS, METHOD_CITATIONS, OPTIMIZER_TEXTS, choices_help

_SOURCE_FLAGS = ("model", "pretrained", "seed", "device", "cache_dir")
_SOURCE_HELP = {"model": "open_clip model name or JSON model config path (instead of a table)",
                "pretrained": "open_clip tag, checkpoint path, or 'random' (with --model)",
                "seed": "seed for --pretrained random and for noise draws"}


def _source_arguments(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import defaults, model_arguments
    from artlens.probes.interpret.source import ModelSource

    model = p.add_argument_group("model (a store table's own, or an open_clip model and weights)")
    model.add_argument("--store", help="store whose --table's model and weights score the images")
    model.add_argument("--table", help="table in --store (its catalog records the model and weights)")
    model_arguments(model, defaults(ModelSource), _SOURCE_FLAGS, help=_SOURCE_HELP)


def source_config(a: argparse.Namespace):
    from artlens.probes.interpret.source import ModelSource

    return ModelSource(store=a.store, table=a.table, model=a.model, pretrained=a.pretrained, seed=a.seed,
                       device=a.device, cache_dir=a.cache_dir)


# ------------------------------------------------------------------ saliency
def saliency_arguments(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import option
    from artlens.probes.interpret.config import SaliencyConfig as C

    p.add_argument("--image", help="image file (decoded like extraction: EXIF, odd modes); or --key")
    p.add_argument("--key", help="instead of --image: the row of --table whose painting is explained (its map is "
                                 "kept in --store, where the explorer's painting page shows it)")
    p.add_argument("--text", required=True, help="the words whose image–text score is explained")
    p.add_argument("--out", help="FILE.png for the heatmap; FILE.json gets the numbers (with --key, default: "
                                 "the store's results/saliency/<table>/)")
    option(p, C, "method", choices=list(METHOD_CITATIONS), help=choices_help(METHOD_CITATIONS, C.method))
    option(p, C, "steps", type=int, help="ig: points on the path from the baseline (default %(default)s)")
    option(p, C, "baseline", choices=list(BASELINE_TEXTS),
           help="ig: start of the path: " + choices_help(BASELINE_TEXTS, C.baseline))
    option(p, C, "batch_size", type=int, help="ig: path points per forward pass")
    _source_arguments(p)


def saliency_config(a: argparse.Namespace):
    from artlens.probes.interpret.config import SaliencyConfig

    return SaliencyConfig(image=a.image, text=a.text, out=a.out, source=source_config(a), method=a.method,
                          steps=a.steps, baseline=a.baseline, batch_size=a.batch_size, key=a.key)


def saliency_run(a: argparse.Namespace) -> int:
    from artlens.probes.interpret.saliency import run_saliency, sidecar_path

    cfg = saliency_config(a)
    found = run_saliency(cfg)
    delta = "" if found["convergence_delta"] is None else \
        f"; convergence delta {found['convergence_delta']:.2e} over {found['steps']} steps"
    print(f"saliency ({cfg.method}): cosine {found['score']:.4f} for {cfg.text!r}{delta}")
    print(f"heatmap: {found['png']}; numbers: {sidecar_path(found['png'])}")
    return 0


# ------------------------------------------------------------------ guide
def guide_arguments(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import option
    from artlens.probes.interpret.config import GuideConfig as C

    p.add_argument("--image", required=True, nargs="+", action="extend",
                   help="image files or folders of images (repeatable)")
    p.add_argument("--text", required=True, help="the words the pixels are pushed toward")
    option(p, C, "steps", type=int, help="ascent steps (default %(default)s)")
    p.add_argument("--out", required=True, help="folder for before/after/difference PNGs, curve.png, result.json")
    option(p, C, "lr", type=float, help="step size in [0, 1] pixel units (default 1/255)")
    option(p, C, "optimizer", choices=list(OPTIMIZER_TEXTS), help=choices_help(OPTIMIZER_TEXTS, C.optimizer))
    option(p, C, "noise_draws", type=int,
           help="seeded Gaussian draws of the final perturbation's L2 norm (the noise baseline)")
    _source_arguments(p)


def guide_config(a: argparse.Namespace):
    from artlens.probes.interpret.config import GuideConfig
    from artlens.probes.interpret.view import image_paths

    return GuideConfig(images=tuple(str(p) for p in image_paths(a.image)), text=a.text, out=a.out,
                       source=source_config(a), steps=a.steps, lr=a.lr, optimizer=a.optimizer,
                       noise_draws=a.noise_draws, seed=a.seed)


def guide_run(a: argparse.Namespace) -> int:
    from artlens.probes.interpret.guideout import run_guide

    cfg = guide_config(a)
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
