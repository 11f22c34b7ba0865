"""`regression`: can a ridge probe read a continuous value (a human rating, a year) off the embeddings?

Outer folds are shuffled KFold, or GroupKFold with `group` (e.g. prompt) so no group spans train and test;
the ridge penalty alpha is chosen inside each training fold by an inner cross-validated sweep over `alphas`
(grouped the same way). From the out-of-fold predictions come Spearman's rho, Pearson's r, MAE, R² and
`mae_gain` (baseline MAE − model MAE), each with a 95% bootstrap interval (a cluster bootstrap over
groups when grouped). Baselines: 0 for rho, r, R² and mae_gain; for MAE, predicting each training
fold's mean for its test fold (computed out of fold, like the model). Rows with a NULL or non-finite
target (or a NULL group) are left out and counted in `details`; a non-numeric target is an error.

Like every probe, it runs with single-threaded BLAS (`probes/threads.py`).

The fold, fit and metric helpers are shared with the `period` probe (its year regression).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold

from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows
from artlens.probes.result import Result
from artlens.probes.stats import bootstrap_ci
from artlens.probes.threads import single_threaded

NAME = "regression"
ALPHAS = tuple(float(a) for a in np.logspace(-4, 3, 8))
SCATTER_CAP = 2000


@dataclass(frozen=True)
class Config(ProbeConfig):
    target: str = ""
    group: str | None = None
    folds: int = 5
    inner_folds: int = 3
    alphas: tuple[float, ...] = ALPHAS


def regression_splits(n: int, groups: np.ndarray | None, folds: int, seed: int) -> list:
    """Shuffled KFold; with groups, GroupKFold (shuffled, seeded) so no group spans train and test."""
    if groups is None:
        return list(KFold(folds, shuffle=True, random_state=seed).split(np.zeros(n)))
    n_groups = len(np.unique(groups))
    if n_groups < folds:
        raise ProbeDataError(f"{n_groups} groups cannot fill {folds} folds")
    return list(GroupKFold(folds, shuffle=True, random_state=seed).split(np.zeros(n), groups=groups))


def fit_ridge(X, y, groups, alphas, inner_folds: int, seed: int) -> GridSearchCV:
    """Ridge with alpha chosen by inner CV (grouped when `groups` is given) on this training set only."""
    inner = (GroupKFold(inner_folds, shuffle=True, random_state=seed) if groups is not None
             else KFold(inner_folds, shuffle=True, random_state=seed))
    search = GridSearchCV(Ridge(), {"alpha": list(alphas)}, cv=inner, scoring="neg_mean_squared_error")
    return search.fit(X, y, groups=groups)


def out_of_fold(X, y, groups, splits, alphas, inner_folds: int, seed: int):
    """Out-of-fold ridge predictions, training-mean baseline predictions, and the alpha chosen per fold."""
    pred = np.empty(len(y))
    baseline = np.empty(len(y))
    chosen = []
    for train, test in splits:
        model = fit_ridge(X[train], y[train], None if groups is None else groups[train], alphas, inner_folds,
                          seed)
        pred[test] = model.predict(X[test])
        baseline[test] = y[train].mean()
        chosen.append(float(model.best_params_["alpha"]))
    return pred, baseline, chosen


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / denom) if denom > 0 else float("nan")


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    return pearson(rankdata(a), rankdata(b))


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(np.abs(a - b)))


def regression_metrics(result: Result, y, pred, baseline, groups, n_boot: int, seed: int,
                       prefix: str = "") -> None:
    """rho, r, MAE, R² and mae_gain of out-of-fold predictions, with bootstrap CIs and baselines."""
    scorers = {
        "spearman_rho": (lambda i: spearman(y[i], pred[i]), 0.0),
        "pearson_r": (lambda i: pearson(y[i], pred[i]), 0.0),
        "mae": (lambda i: _mae(y[i], pred[i]), _mae(y, baseline)),
        "r2": (lambda i: r2_score(y[i], pred[i]) if np.ptp(y[i]) > 0 else float("nan"), 0.0),
        "mae_gain": (lambda i: _mae(y[i], baseline[i]) - _mae(y[i], pred[i]), 0.0),
    }
    for name, (fn, base) in scorers.items():
        ci = bootstrap_ci(fn, len(y), n_boot, seed, groups)
        result.add(prefix + name, fn(np.arange(len(y))), ci, base)


def scatter(y: np.ndarray, pred: np.ndarray, seed: int, cap: int = SCATTER_CAP) -> dict:
    """True and predicted values for a plot; a seeded sample of `cap` points when there are more."""
    idx = np.arange(len(y))
    if len(y) > cap:
        idx = np.sort(np.random.default_rng(seed).choice(len(y), cap, replace=False))
    return {"y_true": y[idx].tolist(), "y_pred": pred[idx].tolist(), "n_shown": len(idx), "n": len(y)}


def numeric_target(values: np.ndarray, name: str) -> np.ndarray:
    """Float values (NaN where NULL); a clear error when the column holds anything but numbers."""
    bad = [v for v in values if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Number))]
    if bad:
        raise ProbeDataError(f"regression target {name!r} is not numeric (found {type(bad[0]).__name__} "
                             f"{bad[0]!r}); use the linear probe for labels")
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


@single_threaded
def run(s, cfg: Config) -> Result:
    if not cfg.target:
        raise ConfigError("regression probe needs target=<numeric column>")
    columns = [cfg.target] + ([cfg.group] if cfg.group else [])
    rows = load_rows(s, cfg.table, columns, cfg.where)
    y = numeric_target(rows.columns[cfg.target], cfg.target)
    has_target = np.isfinite(y)
    has_group = (np.array([g is not None for g in rows.columns[cfg.group]], dtype=bool) if cfg.group
                 else np.ones(len(y), dtype=bool))
    keep = has_target & has_group
    if keep.sum() < 2 * cfg.folds or np.ptp(y[keep]) == 0:
        raise ProbeDataError(f"{int(keep.sum())} usable rows of {cfg.target!r}: too few or all equal")
    X, y = rows.X[keep], y[keep]
    groups = rows.columns[cfg.group][keep].astype(str) if cfg.group else None
    splits = regression_splits(len(y), groups, cfg.folds, cfg.seed)
    pred, baseline, chosen = out_of_fold(X, y, groups, splits, cfg.alphas, cfg.inner_folds, cfg.seed)
    result = Result(NAME, [cfg.table], cfg.as_dict(), n=len(y))
    regression_metrics(result, y, pred, baseline, groups, cfg.n_boot, cfg.seed)
    result.details.update(
        missing_target=int((~has_target).sum()), missing_group=int((~has_group).sum()),
        chosen_alpha=chosen, grouped_by=cfg.group,
        n_groups=None if groups is None else len(np.unique(groups)), target_mean=float(y.mean()),
        target_sd=float(y.std()), scatter=scatter(y, pred, cfg.seed))
    return result
