"""Bar-like figures: per-class scores, the forest plot of a result's metrics, and knn lift by label."""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from artlens.probes.report.figures import BASELINE_COLOR, PALETTE, Drawn, clamp, new_figure, short
from artlens.probes.report.sections import metric_parts

#: Per-class score shown in the bar chart: the first of these a class has.
PER_CLASS_KEYS = ("f1", "purity", "auc", "AUC", "roc_auc", "accuracy", "recall", "value")
#: What a bare number per class means, by probe (separability: one AUC per held-out group).
PER_CLASS_NUMBER = {"separability": "AUC"}
#: Longest per-class chart; beyond it the best and worst halves are shown.
MAX_BARS = 40
#: The forest plot shares one axis, so it shows metrics on the unit scale (the table has the rest).
UNIT = 1.05


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _height(rows: int) -> float:
    return clamp(0.9 + 0.26 * rows, 2.0, 12.0)


# ------------------------------------------------------------------ per class
def per_class_figures(result: dict) -> list[Drawn]:
    per_class = result.get("per_class") or {}
    if not isinstance(per_class, dict) or not per_class:
        return []
    nested = all(isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values())
                 for v in per_class.values())
    groups = list(per_class.items()) if nested else [(None, per_class)]
    drawn = []
    for label, rows in groups:
        items, metric = _per_class_items(rows, PER_CLASS_NUMBER.get(result.get("probe"), "value"))
        if not items:
            continue
        suffix = "per_class" if label is None else f"per_class-{''.join(c if c.isalnum() else '_' for c in label)}"
        of = f" of {label}" if label is not None else ""
        caption = f"{metric} per class{of}, best first (n = support)"
        drawn.append((suffix, caption, _bars(items, metric)))
    return drawn


def _support(value: dict):
    if _number(value.get("support", value.get("n"))):
        return value.get("support", value.get("n"))
    parts = [value.get(k) for k in ("n_test_a", "n_test_b")]  # separability: held-out rows of each set
    return sum(parts) if all(_number(x) for x in parts) else None


def _per_class_items(rows: dict, number_name: str) -> tuple[list[tuple], str]:
    """(class, score, lo, hi, support), best first, and the name of the score."""
    first = next(iter(rows.values()))
    metric = next((k for k in PER_CLASS_KEYS if isinstance(first, dict) and _number(first.get(k))), None)
    items = []
    for name, value in rows.items():
        if isinstance(value, dict) and metric:
            score, support = value.get(metric), _support(value)
            ci = value.get("ci") if metric in ("auc", "AUC", "roc_auc") else None
        else:
            score, support, ci = value, None, None
        if _number(score):
            lo, hi = ci if isinstance(ci, list) and len(ci) == 2 and all(_number(c) for c in ci) else (score, score)
            items.append((str(name), float(score), float(lo), float(hi), support))
    items.sort(key=lambda item: (-item[1], item[0]))
    return items, metric or number_name


def _bars(items: list[tuple], metric: str) -> Figure:
    title = None
    if len(items) > MAX_BARS:
        half = MAX_BARS // 2
        title = f"best {half} and worst {half} of {len(items)} classes"
        items = items[:half] + items[-half:]
    names = [short(it[0], 28) + (f" (n={int(it[4])})" if _number(it[4]) else "") for it in items]
    values, lo, hi = (np.array([it[i] for it in items]) for i in (1, 2, 3))
    has_ci = bool(np.any(hi > lo))
    fig = new_figure(6.4, _height(len(items)))
    ax = fig.add_subplot()
    y = np.arange(len(items))
    ax.barh(y, values, color=PALETTE[0], height=0.7, xerr=np.array([values - lo, hi - values]).clip(min=0)
            if has_ci else None, error_kw={"ecolor": "#333333", "capsize": 2, "lw": 0.8})
    ax.set_yticks(y, names)
    ax.set_ylim(len(items) - 0.4, -0.6)
    ax.set_xlim(0, 1.14 if values.min() >= 0 and hi.max() <= 1 else None)
    for yi, v, end in zip(y, values, np.maximum(hi, values)):
        ax.text(end, yi, f" {v:.3f}", va="center", fontsize=7)
    if metric.lower() in ("auc", "roc_auc"):
        ax.axvline(0.5, color=BASELINE_COLOR, lw=1, ls="--", label="chance (0.5)")
        fig.legend(loc="outside lower center", frameon=False)
    ax.set_xlabel(metric + (" (95% interval)" if has_ci else ""))
    if title:
        ax.set_title(title)
        ax.axhline(MAX_BARS // 2 - 0.5, color="#999999", lw=0.8, ls=":")
    return fig


# ------------------------------------------------------------------ forest plot
def _forest_rows(result: dict) -> tuple[list[tuple[str, float, float, float, float | None]], int]:
    baseline = result.get("baseline") or {}
    rows, skipped = [], 0
    for name, metric in (result.get("metrics") or {}).items():
        value, ci = metric_parts(metric)
        lo, hi = (ci[0] if _number(ci[0]) else value), (ci[1] if _number(ci[1]) else value)
        base = baseline.get(name) if _number(baseline.get(name)) else None
        shown = [x for x in (value, lo, hi, base) if x is not None]
        if not _number(value) or any(not _number(x) or abs(x) > UNIT for x in shown):
            skipped += 1
            continue
        rows.append((name, float(value), float(lo), float(hi), base))
    return rows, skipped


def forest_figures(result: dict) -> list[Drawn]:
    rows, skipped = _forest_rows(result)
    if not rows:
        return []
    caption = "Metrics with 95% intervals; red bar: baseline (chance or majority class)"
    if skipped:
        caption += f"; {skipped} metric(s) off the unit scale or undefined are in the table only"
    return [("forest", caption, _forest(rows))]


def _forest(rows: list[tuple[str, float, float, float, float | None]]) -> Figure:
    fig = new_figure(6.4, _height(len(rows)) + 0.3)
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    values = np.array([r[1] for r in rows])
    err = np.array([[r[1] - r[2] for r in rows], [r[3] - r[1] for r in rows]]).clip(min=0)
    ax.errorbar(values, y, xerr=err, fmt="o", color=PALETTE[0], ecolor=PALETTE[0], capsize=3, ms=5,
                label="value, 95% CI")
    based = [(yi, r[4]) for yi, r in zip(y, rows) if r[4] is not None]
    if based:
        ax.scatter([b for _, b in based], [yi for yi, _ in based], marker="|", s=260, linewidths=2,
                   color=BASELINE_COLOR, label="baseline", zorder=3)
    ax.set_yticks(y, [short(r[0], 34) for r in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)
    negative = min(min(r[2] for r in rows), min((b for _, b in based), default=0)) < 0
    ax.set_xlim(-1.05 if negative else -0.02, 1.05)
    if negative:
        ax.axvline(0, color="#BBBBBB", lw=0.8)
    ax.grid(axis="x", color="#EEEEEE")
    ax.set_axisbelow(True)
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    return fig


# ------------------------------------------------------------------ knn lift
def _ranking_labels(ranking) -> list[str]:
    labels = []
    for item in ranking if isinstance(ranking, list) else []:
        label = item.get("label") if isinstance(item, dict) else item[0] if isinstance(item, (list, tuple)) else item
        if label is not None:
            labels.append(str(label))
    return labels


def _ratio_lifts(result: dict, suffix: str) -> dict[str, tuple[float, float, float]]:
    """label → (value, lo, hi) of `<label><suffix>` ÷ its baseline (1 = no more than chance)."""
    baseline, lifts = result.get("baseline") or {}, {}
    for name, metric in (result.get("metrics") or {}).items():
        base, (value, ci) = baseline.get(name), metric_parts(metric)
        if name.endswith(suffix) and _number(base) and base > 0 and _number(value):
            lo, hi = (c if _number(c) else value for c in ci)
            lifts[name[: -len(suffix)]] = (value / base, lo / base, hi / base)
    return lifts


def _lifts(result: dict) -> tuple[dict[str, tuple[float, float, float]], str]:
    """label → (lift, lo, hi) and what the lift is: purity ÷ random-neighbour purity (the knn probe's
    details["lift"], with intervals from the metrics), else the probe's own numbers, else knn accuracy ÷ its
    majority baseline."""
    lifts = _ratio_lifts(result, ".purity")
    if lifts:
        return lifts, "neighbour purity ÷ random-neighbour purity"
    given = (result.get("details") or {}).get("lift")
    if isinstance(given, dict) and any(_number(v) for v in given.values()):
        return {str(k): (float(v), float(v), float(v)) for k, v in given.items() if _number(v)}, "lift"
    return _ratio_lifts(result, ".knn_accuracy"), "knn accuracy ÷ majority baseline"


def lift_figures(result: dict) -> list[Drawn]:
    lifts, meaning = _lifts(result)
    if not lifts:
        return []
    ranked = [x for x in _ranking_labels((result.get("details") or {}).get("ranking")) if x in lifts]
    order = ranked + sorted((x for x in lifts if x not in ranked), key=lambda x: (-lifts[x][0], x))
    caption = f"What the model groups paintings by first: lift per label ({meaning}); 1 = chance"
    return [("lift", caption, _lift(order, lifts, meaning))]


def _lift(order: list[str], lifts: dict, meaning: str) -> Figure:
    fig = new_figure(6.4, _height(len(order)))
    ax = fig.add_subplot()
    y = np.arange(len(order))
    values = np.array([lifts[x][0] for x in order])
    err = np.array([[lifts[x][0] - lifts[x][1] for x in order], [lifts[x][2] - lifts[x][0] for x in order]])
    has_ci = bool(np.any(err > 0))
    ax.barh(y, values, color=PALETTE[2], height=0.65, xerr=err.clip(min=0) if has_ci else None,
            error_kw={"ecolor": "#333333", "capsize": 3, "lw": 1})
    ends = values + err[1].clip(min=0)
    for yi, v, end in zip(y, values, ends):
        ax.text(max(end, 0), yi, f" {v:.3f}", va="center", ha="left", fontsize=7)
    ax.set_xlim(min(0, values.min()), max(ends.max(), 1.0) * 1.15)
    ax.set_yticks(y, [short(x, 30) for x in order])
    ax.set_ylim(len(order) - 0.4, -0.6)
    ax.axvline(1.0, color=BASELINE_COLOR, lw=1, ls="--", label="no lift (chance)")
    fig.legend(loc="outside lower center", frameon=False)
    ax.set_xlabel(meaning + (", 95% interval" if has_ci else ""))
    return fig
