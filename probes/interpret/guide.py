"""`artlens guide`: a few steps of gradient ascent on the pixels toward a text, as CLIP guidance does in style
transfer and prompt-based synthesis, measuring how far the CLIP score moves against how much the image changes.

The pixels are the model's view (`view.py`: resize + center crop, [0, 1], before normalisation), updated by an
optimiser from `OPTIMIZERS` and clamped to [0, 1] after every step:
- `sign` (default): x ← x + lr · sign(∇score), the iterative fast-gradient-sign step (Goodfellow, Shlens &
  Szegedy 2015; Kurakin, Goodfellow & Bengio 2017). With lr = 1/255 every pixel moves at most one 8-bit level
  per step and stays on the 8-bit grid, so after.png reproduces the guided pixels exactly;
- `adam`: torch.optim.Adam on −score.
Per step: score (cosine of the normalised embeddings), L2, RMSE and L∞ change, SSIM to the original
(skimage.metrics.structural_similarity, data_range 1, over RGB). Honest baseline: the score change caused by
seeded Gaussian noise rescaled to the L2 norm of the final perturbation (then clamped to [0, 1]).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch
from skimage.metrics import structural_similarity

from artlens.probes.interpret.config import GuideConfig
from artlens.probes.interpret.view import ClipScore, SourceImage, to_numpy_image


class SignAscent(torch.optim.Optimizer):
    """p ← p − lr · sign(p.grad): on the gradient of −score, a sign-gradient ascent of the score."""

    def __init__(self, params, lr: float):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad.sign(), alpha=-group["lr"])


#: --optimizer → optimiser class over the pixels (it minimises −score); described in names.OPTIMIZER_TEXTS.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {"sign": SignAscent, "adam": torch.optim.Adam}


@dataclass(frozen=True)
class Change:
    """How far pixels x moved from the original x0 (views in [0, 1])."""
    l2: float
    rmse: float
    linf: float
    ssim: float

    @classmethod
    def between(cls, x0: torch.Tensor, x: torch.Tensor) -> "Change":
        diff = (x.detach().cpu() - x0.cpu()).double()
        ssim = structural_similarity(to_numpy_image(x0), to_numpy_image(x), channel_axis=-1, data_range=1.0)
        return cls(float(diff.norm()), float(diff.pow(2).mean().sqrt()), float(diff.abs().max()), float(ssim))


@dataclass(frozen=True)
class Noise:
    gain: float                   # mean score change over the draws
    gains: list[float]
    l2: float                     # mean L2 of the noise after clamping
    ssim: float                   # mean SSIM of the noisy views to the original


@dataclass
class Trace:
    """One image's ascent: the score and the change at every step (step 0 = the original)."""
    image: SourceImage
    before: torch.Tensor          # (3, H, W) view
    after: torch.Tensor | None = None
    scores: list[float] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    noise: Noise | None = None
    score_after_png: float | None = None   # the score of after.png as saved (8-bit)

    @property
    def gain(self) -> float:
        return self.scores[-1] - self.scores[0]


def ascend(scorer: ClipScore, image: SourceImage, cfg: GuideConfig) -> Trace:
    """cfg.steps optimiser steps on the view of `image` toward scorer's text; one forward pass per step."""
    view = scorer.view.view(image.image)
    trace = Trace(image, view)
    x = view.clone().to(scorer.loaded.device).requires_grad_(True)
    optimizer = OPTIMIZERS[cfg.optimizer]([x], lr=cfg.lr)
    for step in range(cfg.steps + 1):
        score = scorer(x[None])[0]
        trace.scores.append(float(score.detach()))
        trace.changes.append(Change.between(view, x))
        if step == cfg.steps:
            break
        (grad,) = torch.autograd.grad(-score, x)     # pixels only: the model's own .grad stay untouched
        x.grad = grad
        optimizer.step()
        with torch.no_grad():
            x.clamp_(0.0, 1.0)
    trace.after = x.detach().cpu()
    trace.noise = noise_baseline(scorer, view, trace.changes[-1].l2, cfg.noise_draws, cfg.seed)
    trace.score_after_png = scorer.score(quantised(trace.after))
    return trace


def noise_baseline(scorer: ClipScore, view: torch.Tensor, l2: float, draws: int, seed: int) -> Noise:
    """Score change under seeded Gaussian noise rescaled to L2 norm `l2`, clamped to [0, 1]."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((draws, *view.shape), generator=generator, dtype=torch.float32)
    noise = noise * (l2 / noise.flatten(1).norm(dim=1).clamp_min(1e-12)).view(-1, 1, 1, 1)
    noisy = (view[None] + noise).clamp(0.0, 1.0)
    with torch.no_grad():
        gains = (scorer(noisy) - scorer(view[None])[0]).cpu().tolist()
    changes = [Change.between(view, n) for n in noisy]
    return Noise(float(np.mean(gains)), gains, float(np.mean([c.l2 for c in changes])),
                 float(np.mean([c.ssim for c in changes])))


def quantised(view: torch.Tensor) -> torch.Tensor:
    """The view as an 8-bit PNG stores it."""
    return (view.clamp(0, 1) * 255).round() / 255


def guide_images(scorer: ClipScore, images: list[SourceImage], cfg: GuideConfig) -> list[Trace]:
    """Each image guided with its own noise seed (cfg.seed + its position)."""
    return [ascend(scorer, image, replace(cfg, seed=cfg.seed + i)) for i, image in enumerate(images)]
