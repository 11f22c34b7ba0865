"""Figures of the `deformation` probe (details `grid`, `pooled`, `invariance`): embedding shift, detectability
AUC and flip rates against severity, one line per deformation with its 95% band, and the invariance
scatter of shift against pixel visibility (1 − SSIM)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from artlens.probes.report.figures import BASELINE_COLOR, PALETTE, Drawn, new_figure, short

#: (grid key, y label, what its baseline is, caption); the figure suffix is `deformation-<grid key>`
CURVES = (
    ("shift", "embedding shift 1 − cos(deformed, clean)", "two different paintings",
     "Embedding shift against severity, per deformation (95% bands over paintings); black: all pooled"),
    ("auc", "detectability AUC (clean vs deformed)", "chance",
     "Can a linear probe tell deformed from clean? Out-of-fold AUC by severity, folds grouped by painting; "
     "black: all deformations pooled"),
    ("flip", "share of paintings whose label flips", "unrelated prediction",
     "Label stability: how often the linear prediction of the label changes, by severity"),
    ("zs_flip", "share of paintings whose zero-shot label flips", "unrelated prediction",
     "Label stability: how often the zero-shot prediction changes, by severity"),
)


def _series(grid: list[dict], key: str) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """deformation → (severities, values, lower, upper) of one grid metric."""
    out: dict[str, list] = {}
    for cell in grid:
        metric = cell.get(key)
        if isinstance(metric, dict) and metric.get("value") is not None:
            lo, hi = (metric.get("ci") or [None, None])
            value = float(metric["value"])
            out.setdefault(str(cell["deformation"]), []).append(
                (int(cell["severity"]), value, value if lo is None else lo, value if hi is None else hi))
    return {name: tuple(np.array(col, dtype=float) for col in zip(*sorted(rows))) for name, rows in out.items()}


def _band(ax, x, y, lo, hi, color, label, lw=1.5) -> None:
    ax.plot(x, y, "o-", color=color, lw=lw, ms=3.5, label=label)
    ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0)


def _curve(series: dict, pooled: tuple | None, ylabel: str, baseline: float | None, meaning: str) -> Figure:
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    for i, (name, (x, y, lo, hi)) in enumerate(sorted(series.items())):
        _band(ax, x, y, lo, hi, PALETTE[i % len(PALETTE)], short(name, 20))
    if pooled is not None:
        _band(ax, *pooled, "#222222", "all (pooled)", lw=2.4)
    top = max(float(np.nanmax(hi)) for _, _, _, hi in series.values())
    if baseline is not None and baseline <= 3 * max(top, 1e-9):
        ax.axhline(baseline, color=BASELINE_COLOR, lw=1, ls="--", label=f"baseline: {meaning} ({baseline:.3f})")
    ax.set_xticks(range(1, 6))
    ax.set_xlabel("severity")
    ax.set_ylabel(ylabel)
    fig.legend(loc="outside right center", frameon=False)
    return fig


def _pooled(details: dict, key: str) -> tuple | None:
    rows = [(q["severity"], q[key]["value"], *q[key]["ci"]) for q in details.get("pooled") or []
            if isinstance(q.get(key), dict) and q[key].get("value") is not None and None not in q[key]["ci"]]
    return tuple(np.array(col, dtype=float) for col in zip(*sorted(rows))) if rows else None


def _invariance(rows: list[dict]) -> Figure:
    fig = new_figure(6.0, 4.6)
    ax = fig.add_subplot()
    x = np.array([r["visibility"] for r in rows], dtype=float)
    y = np.array([r["shift"] for r in rows], dtype=float)
    lo, hi = (np.array([r["shift_ci"][j] for r in rows], dtype=float) for j in (0, 1))
    ax.errorbar(x, y, yerr=np.array([y - lo, hi - y]).clip(min=0), fmt="o", color=PALETTE[0], capsize=3, ms=5)
    for xi, yi, r in zip(x, y, rows):
        ax.annotate(short(r["deformation"], 18), (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel("pixel visibility 1 − SSIM (highest severity)")
    ax.set_ylabel("embedding shift (highest severity)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    return fig


def deformation_figures(result: dict) -> list[Drawn]:
    details = result.get("details") or {}
    grid = details.get("grid")
    if not isinstance(grid, list) or not grid:
        return []
    baseline = result.get("baseline") or {}
    base = {k.split(".")[0]: v for k, v in baseline.items()}
    drawn = []
    for key, ylabel, meaning, caption in CURVES:
        series = _series(grid, key)
        if series:
            figure = _curve(series, _pooled(details, key), ylabel, base.get(key), meaning)
            drawn.append((f"deformation-{key}", caption, figure))
    rows = [r for r in details.get("invariance") or [] if None not in (r.get("visibility"), r.get("shift"))]
    if rows:
        drawn.append(("deformation-invariance", "What the model ignores for how visible it is: embedding shift "
                      "against pixel visibility (1 − SSIM) at each deformation's highest severity; low and to "
                      "the right = plainly visible yet barely moves the embedding", _invariance(rows)))
    return drawn
