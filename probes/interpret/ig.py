"""Integrated Gradients (Sundararajan, Taly & Yan 2017, "Axiomatic Attribution for Deep Networks", ICML) on
the view pixels, computed by captum's `IntegratedGradients` (Gauss–Legendre quadrature, `steps` points).

Attribution of pixel i: (x_i − x'_i) · ∫₀¹ ∂score(x' + α(x − x'))/∂x_i dα, for the baseline image x'.
Completeness: the attributions sum to score(x) − score(x'); captum's convergence delta is the error of that
sum, so a small |delta| means enough steps. The map shown is the attribution summed over RGB per pixel
(signed: red raises the score, blue lowers it).

Baselines (data, `BASELINES`): `black` (all zeros, the paper's choice for image networks; the default) and
`blur` (the view under a Gaussian blur of σ = 1/16 of its side; attributions then credit detail and edges
rather than brightness, cf. Sturmfels, Lundberg & Lee 2020, "Visualizing the Impact of Feature Attribution
Baselines", Distill).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from captum.attr import IntegratedGradients
from torchvision.transforms.functional import gaussian_blur

from artlens.probes.interpret.names import METHOD_CITATIONS
from artlens.probes.interpret.view import ClipScore

CITATION = METHOD_CITATIONS["ig"]


def _black(view: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(view)


def _blur(view: torch.Tensor) -> torch.Tensor:
    sigma = max(view.shape[-2:]) / 16
    kernel = 2 * int(3 * sigma) + 1
    return gaussian_blur(view[None], [kernel, kernel], [sigma, sigma])[0]


#: --baseline → the image x' the path integral starts from (described in names.BASELINE_TEXTS).
BASELINES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"black": _black, "blur": _blur}


@dataclass(frozen=True)
class Attribution:
    attributions: torch.Tensor      # (3, H, W), same units as the score
    baseline: torch.Tensor          # (3, H, W) view pixels of x'
    delta: float                    # captum's convergence delta: sum(attributions) − (score(x) − score(x'))


def integrated_gradients(scorer: ClipScore, view: torch.Tensor, steps: int, baseline: str = "black",
                         batch_size: int = 16) -> Attribution:
    """IG of scorer's score for one view (3, H, W); the path is evaluated `batch_size` points at a time."""
    start = BASELINES[baseline](view)
    device = scorer.loaded.device
    ig = IntegratedGradients(scorer)
    attributions, delta = ig.attribute(view[None].to(device), baselines=start[None].to(device), n_steps=steps,
                                       internal_batch_size=batch_size, return_convergence_delta=True)
    return Attribution(attributions[0].detach().float().cpu(), start, float(delta[0]))
