"""Curves over steps, one thin line per item and the mean in bold, with an optional second y axis (dashed).
Used by `artlens guide` (CLIP score and SSIM per ascent step); any result can use it through its details:

    details["<name>curve"] = {"x": [0, 1, ...], "xlabel": "step", "caption": "...",
                              "left":  {"label": "CLIP score", "series": {"item": [y0, y1, ...], ...}},
                              "right": {"label": "SSIM", "series": {...}}}        # right is optional
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from artlens.probes.report.figures import PALETTE, Drawn, _keyed, new_figure, suffix_of

#: Thin lines for each item only while they stay readable; beyond, the mean and a 10–90% band.
MAX_LINES = 25


def curve_figures(result: dict) -> list[Drawn]:
    drawn = []
    for key, value in _keyed(result, "curve", ("x", "left")):
        caption = value.get("caption") or f"{value['left'].get('label', 'value')} by {value.get('xlabel', 'step')}"
        drawn.append((suffix_of(key, "curve"), caption, curve_figure(value)))
    return drawn


def _series(axis: dict, n: int) -> np.ndarray:
    rows = np.asarray(list((axis.get("series") or {}).values()), dtype=float)
    if rows.ndim != 2 or rows.shape[1] != n or len(rows) == 0:
        raise ValueError(f"curve series must be non-empty lists of {n} values")
    return rows


def _draw(ax, x: np.ndarray, rows: np.ndarray, colour: str, style: str, label: str) -> None:
    if len(rows) <= MAX_LINES:
        for row in rows:
            ax.plot(x, row, style, color=colour, lw=0.8, alpha=0.35)
    else:
        ax.fill_between(x, *np.percentile(rows, [10, 90], axis=0), color=colour, alpha=0.15, lw=0)
    ax.plot(x, rows.mean(axis=0), style, color=colour, lw=2.2, marker="o", ms=3,
            label=f"{label} (mean of {len(rows)})")
    ax.set_ylabel(label, color=colour)


def curve_figure(value: dict) -> Figure:
    x = np.asarray(value["x"], dtype=float)
    fig = new_figure(6.4, 4.0)
    ax = fig.add_subplot()
    _draw(ax, x, _series(value["left"], len(x)), PALETTE[0], "-", value["left"].get("label", "value"))
    ax.set_xlabel(value.get("xlabel", "step"))
    axes = [ax]
    if value.get("right"):
        twin = ax.twinx()
        twin.spines["right"].set_visible(True)
        _draw(twin, x, _series(value["right"], len(x)), PALETTE[1], "--", value["right"].get("label", "value"))
        axes.append(twin)
    handles = [h for a in axes for h in a.get_legend_handles_labels()[0]]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
    return fig
