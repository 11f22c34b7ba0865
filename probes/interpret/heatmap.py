"""A saliency map drawn over the model's view of the painting: matplotlib colormap, opacity growing with the
magnitude, a colorbar (its scale ends at the 99th percentile of |value|), the method's citation in the title.
Fixed size and dpi, no timestamps, so the same map gives the same PNG bytes."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.colors import Normalize, TwoSlopeNorm

from artlens.probes.report.figures import STYLE, new_figure

FIGSIZE = (6.0, 5.6)     # inches
DPI = 100                # → 600 × 560 pixels
#: Opacity of the heat layer: FLOOR where the map is 0, FLOOR + RANGE from the top of the colour scale up.
ALPHA_FLOOR, ALPHA_RANGE = 0.1, 0.65
#: The colour scale ends at this percentile of |value| (captum's visualisation clips outliers the same way:
#: a few extreme pixels would otherwise leave the rest of a per-pixel map invisible).
SCALE_PERCENTILE = 99.0


@dataclass(frozen=True)
class Colours:
    cmap: str
    label: str


#: signed map (attributions that raise or lower the score) or a relevance ≥ 0.
COLOURS = {True: Colours("RdBu_r", "attribution to the score (red raises, blue lowers)"),
           False: Colours("inferno", "relevance to the score")}


def scale_top(values: np.ndarray) -> float:
    """Where the colour scale ends: the SCALE_PERCENTILE of |value| (the maximum if that is 0; 1 if all are 0)."""
    magnitude = np.abs(values)
    return float(np.percentile(magnitude, SCALE_PERCENTILE)) or float(magnitude.max()) or 1.0


def _norm(top: float, signed: bool) -> Normalize:
    return TwoSlopeNorm(0.0, -top, top) if signed else Normalize(0.0, top)


def png_size() -> tuple[int, int]:
    """(width, height) in pixels of every heatmap PNG."""
    return round(FIGSIZE[0] * DPI), round(FIGSIZE[1] * DPI)


def save_overlay(view: np.ndarray, values: np.ndarray, signed: bool, title: str, path: str | Path) -> Path:
    """view (H, W, 3) in [0, 1] with values (H, W) over it → a PNG at `path`."""
    colours = COLOURS[signed]
    top = scale_top(values)
    magnitude = np.clip(np.abs(values) / top, 0.0, 1.0)
    with matplotlib.rc_context(STYLE):
        fig = new_figure(*FIGSIZE)
        ax = fig.add_subplot()
        ax.imshow(view, interpolation="nearest")
        heat = ax.imshow(values, cmap=colours.cmap, norm=_norm(top, signed), interpolation="nearest",
                         alpha=ALPHA_FLOOR + ALPHA_RANGE * magnitude)
        ax.set_axis_off()
        ax.set_title("\n".join(textwrap.wrap(title, 90)), fontsize=7)
        fig.colorbar(heat, ax=ax, shrink=0.8, label=colours.label)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, metadata={"Software": None})
    return path
