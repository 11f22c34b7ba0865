"""Figures of one result as PNG files: matplotlib's Agg canvas (no pyplot, no global backend switch), fixed
style, sizes and dpi, no timestamps in the files, so the same result always gives the same bytes.

Each builder looks at a result and returns (suffix, caption, Figure) for every figure it can draw; a key it
does not find means no figure. The file is `<result name>.<suffix>.png`."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

log = logging.getLogger(__name__)

DPI = 110
STYLE = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
         "xtick.labelsize": 8, "ytick.labelsize": 8, "legend.fontsize": 8, "axes.spines.top": False,
         "axes.spines.right": False, "figure.facecolor": "white", "savefig.facecolor": "white"}
PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C",
           "#CCB974", "#64B5CD")
BASELINE_COLOR = "#C44E52"

Drawn = tuple[str, str, Figure]


@dataclass(frozen=True)
class FigureRef:
    path: str        # relative to the report folder, with forward slashes
    caption: str


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def clamp(value: float, lo: float, hi: float) -> float:
    return min(max(value, lo), hi)


def short(text, width: int = 26) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def suffix_of(key: str, base: str) -> str:
    """'confusion' → 'confusion'; 'century.confusion' → 'confusion-century'."""
    prefix = key[: -len(base)].strip("._-")
    return base if not prefix else f"{base}-{''.join(c if c.isalnum() else '_' for c in prefix)}"


def _keyed(result: dict, base: str, needed: tuple[str, ...]) -> list[tuple[str, dict]]:
    details = result.get("details") or {}
    return [(k, v) for k, v in details.items()
            if str(k).endswith(base) and isinstance(v, dict) and all(n in v for n in needed)]


# ------------------------------------------------------------------ confusion matrix
def confusion_figures(result: dict) -> list[Drawn]:
    drawn = []
    for key, value in _keyed(result, "confusion", ("matrix",)):
        of = key[: -len("confusion")].strip("._-")
        caption = f"Confusion matrix{' of ' + of if of else ''}: rows are true classes, normalised to 1"
        drawn.append((suffix_of(key, "confusion"), caption, _confusion(value)))
    return drawn


def _confusion(value: dict) -> Figure:
    m = np.asarray(value["matrix"], dtype=float)
    labels = [str(x) for x in value.get("labels") or range(len(m))]
    if m.ndim != 2 or m.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix of shape {m.shape} for {len(labels)} labels")
    totals = m.sum(axis=1, keepdims=True)
    norm = np.divide(m, totals, out=np.zeros_like(m), where=totals > 0)
    k = len(labels)
    side = clamp(2.6 + 0.3 * k, 4.2, 12.0)
    fig = new_figure(side + 1.2, side)
    ax = fig.add_subplot()
    image = ax.imshow(norm, cmap="Blues", vmin=0.0, vmax=1.0)
    font = 8 if k <= 15 else 7 if k <= 30 else 5
    names = [short(x, 24) for x in labels]
    ax.set_xticks(np.arange(k), names, rotation=45 if k <= 15 else 90, ha="right", rotation_mode="anchor",
                  fontsize=font)
    ax.set_yticks(np.arange(k), names, fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.spines[:].set_visible(False)
    if k <= 12:
        for (i, j), share in np.ndenumerate(norm):
            ax.text(j, i, f"{share:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if share > 0.55 else "#222222")
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    return fig


# ------------------------------------------------------------------ PCA scatter
def pca_figures(result: dict) -> list[Drawn]:
    """The PCA scatter of each `pca` detail; where the result also has the matching `umap` detail (same points,
    e.g. separability with umap=True), a UMAP panel beside it in the same colours."""
    drawn = []
    details = result.get("details") or {}
    for key, value in _keyed(result, "pca", ("x", "y")):
        if not any(k.startswith("explained") for k in value) and "explained_variance_ratio" in details:
            value = {**value, "explained": details["explained_variance_ratio"]}
        umap = details.get(key[: -len("pca")] + "umap")
        if isinstance(umap, dict) and "x" in umap and "y" in umap:
            caption = "First two principal components (left) and a seeded 2-D UMAP (right), coloured by set"
            drawn.append((suffix_of(key, "pca"), caption, _pca(value, umap)))
        else:
            drawn.append((suffix_of(key, "pca"), "First two principal components, coloured by set", _pca(value)))
    return drawn


def _axis_label(pc: int, explained) -> str:
    if isinstance(explained, (list, tuple)) and len(explained) >= pc and explained[pc - 1] is not None:
        return f"PC{pc} ({100 * float(explained[pc - 1]):.1f}% of variance)"
    return f"PC{pc}"


def _points(value: dict, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, y = np.asarray(value["x"], dtype=float), np.asarray(value["y"], dtype=float)
    sets = np.asarray([str(s) for s in value.get("set") or ["all"] * len(x)])
    if not (len(x) == len(y) == len(sets)):
        raise ValueError(f"{what} x, y and set differ in length")
    return x, y, sets


def _scatter_sets(ax, x, y, sets, names: list[str]) -> None:
    size = 12 if len(x) <= 2000 else 4
    for i, name in enumerate(names):
        mask = sets == name
        if mask.any():
            ax.scatter(x[mask], y[mask], s=size, alpha=0.55, linewidths=0, color=PALETTE[i % len(PALETTE)],
                       label=f"{short(name, 30)} (n={int(mask.sum())})")
    ax.legend(markerscale=2.0, frameon=False, loc="best")


def _pca(value: dict, umap: dict | None = None) -> Figure:
    x, y, sets = _points(value, "pca")
    if umap is None:
        fig = new_figure(6.4, 5.0)
        ax = fig.add_subplot()
        names = sorted(set(sets.tolist()))
    else:
        ux, uy, usets = _points(umap, "umap")
        fig = new_figure(12.0, 5.0)
        ax, uax = fig.subplots(1, 2)
        names = sorted(set(sets.tolist()) | set(usets.tolist()))   # one colour per set in both panels
        _scatter_sets(uax, ux, uy, usets, names)
        uax.set_xlabel("UMAP 1")
        uax.set_ylabel("UMAP 2")
        uax.set_title("UMAP (cosine, 15 neighbours)")
        ax.set_title("PCA")
    _scatter_sets(ax, x, y, sets, names)
    explained = value.get("explained") or value.get("explained_variance") or value.get("explained_variance_ratio")
    ax.set_xlabel(_axis_label(1, explained))
    ax.set_ylabel(_axis_label(2, explained))
    return fig


# ------------------------------------------------------------------ regression scatter
#: Probes whose scatter compares predictions with human ratings (others: with the true value).
RATED = frozenset({"regression"})


def scatter_figures(result: dict) -> list[Drawn]:
    drawn = []
    for key, value in _keyed(result, "scatter", ("y_true", "y_pred")):
        name = key[: -len("scatter")].strip("._-") or str((result.get("config") or {}).get("target") or "value")
        truth = f"human rating: {name}" if result.get("probe") in RATED else f"true {name}"
        caption = f"Predicted vs {truth}, out of fold; dashed: perfect agreement"
        shown, total = value.get("n_shown"), value.get("n")
        if isinstance(shown, int) and isinstance(total, int) and shown < total:
            caption += f"; a random {shown} of {total} points"
        figure = _scatter(value, short(truth, 44), f"predicted {short(name, 30)}")
        drawn.append((suffix_of(key, "scatter"), caption, figure))
    return drawn


def _scatter(value: dict, xlabel: str, ylabel: str) -> Figure:
    t, p = np.asarray(value["y_true"], dtype=float), np.asarray(value["y_pred"], dtype=float)
    if len(t) != len(p) or len(t) == 0:
        raise ValueError("scatter y_true and y_pred differ in length or are empty")
    fig = new_figure(5.4, 5.0)
    ax = fig.add_subplot()
    ax.scatter(t, p, s=12, alpha=0.35 if len(t) > 300 else 0.6, linewidths=0, color=PALETTE[0], label="painting")
    levels = np.unique(t)
    if len(levels) <= 12:  # ratings on a few levels: the mean prediction per level reads better than the cloud
        means = [p[t == level].mean() for level in levels]
        ax.plot(levels, means, "o-", color=PALETTE[1], lw=1.5, ms=5, label="mean prediction at each true value")
    lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
    pad = (hi - lo) * 0.05 or 1.0
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], ls="--", lw=1, color="#555555", label="identity")
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, loc="upper left")
    return fig


# ------------------------------------------------------------------ registry and files
def _builders() -> tuple[Callable[[dict], list[Drawn]], ...]:
    from artlens.probes.report.bars import forest_figures, lift_figures, per_class_figures
    from artlens.probes.report.curves import curve_figures
    from artlens.probes.report.deformfigures import deformation_figures

    return (forest_figures, lift_figures, confusion_figures, per_class_figures, pca_figures, scatter_figures,
            curve_figures, deformation_figures)


def draw_figures(result: dict, name: str, folder: Path) -> list[FigureRef]:
    """Every figure the result has data for, saved under `folder`; a malformed detail is skipped, logged."""
    refs = []
    with matplotlib.rc_context(STYLE):
        for builder in _builders():
            try:
                drawn = builder(result)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                log.warning("report: no %s figure for %s: %s", builder.__name__, name, exc)
                continue
            for suffix, caption, fig in drawn:
                path = folder / f"{name}.{suffix}.png"
                fig.savefig(path, dpi=DPI, metadata={"Software": None})
                refs.append(FigureRef(f"{folder.name}/{path.name}", caption))
    return refs
