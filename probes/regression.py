"""`regression`: can a ridge probe read a continuous value (a human rating, a year) off the embeddings?

Outer folds are shuffled KFold, or GroupKFold with `group` so no group spans train and test; the ridge
penalty alpha is chosen inside each training fold by an inner cross-validated sweep over `alphas` (grouped
the same way). From the out-of-fold predictions come Spearman's rho, Pearson's r, MAE, R² and `mae_gain`
(baseline MAE − model MAE), each with a 95% bootstrap interval. Baselines: 0 for rho, r, R² and mae_gain;
for MAE, predicting each training fold's mean for its test fold (computed out of fold, like the model).
Rows with a NULL or non-finite target (or a NULL in any group column) are left out and counted in
`details`; a non-numeric target is an error.

* `group` (one column or several, `--group prompt --group dup_group`): rows sharing a value in ANY of the
  columns are one group (connected components, `probes/groups.py`); groups never fall on both sides of a
  split, and every interval resamples whole groups (a cluster bootstrap). `details["grouped_by"]` lists the
  columns, `details["n_groups"]` counts the combined groups.
* `nuisance` (one column or several, e.g. `--nuisance generative_model`): a model that sees only those
  columns, fit on each outer training fold (the same splits as the ridge): the training fold's mean target
  per combination of the columns' values (as strings, NULL a value of its own); a combination the training
  fold lacks gets the training fold's mean. Reported: `nuisance.<m>` for m in spearman_rho, pearson_r, mae,
  r2 (baseline: m's own); `<m>_gain_over_nuisance`, ridge minus nuisance (for MAE nuisance minus ridge:
  positive always favours the embedding), a paired interval (one set of resampled rows scores both),
  baseline 0; `within_nuisance.spearman_rho` and `.pearson_r`, the correlation of target and prediction
  after subtracting each combination's mean from both, recomputed on each resample's rows (a combination
  of one row contributes 0), baseline 0: does the embedding see the target within one combination (one
  generator)? `details["nuisance"]`: columns, combinations, unseen_in_training (test rows whose combination
  their training fold lacked).
* `test_table`: a transfer. The ridge (alpha by the same inner CV, grouped as configured) is fit once on
  every kept row of `table` and scores the rows of `test_table` that have a finite target (same `target`
  column, same embedding dim, else a ProbeDataError); `where` filters `table` only. `transfer.<m>` for the
  five metrics above, intervals over the test table's combined groups: its `test_group` columns (e.g.
  prompt, when the fit table is grouped by artist), else `group` when it has every one, else rows;
  baselines from the fit table: MAE of predicting its mean, 0 otherwise. With `nuisance`,
  the nuisance model fit on `table` gives `transfer.nuisance.<m>`, `transfer.<m>_gain_over_nuisance` and
  `transfer.within_nuisance.*`. `details["transfer"]` has the test table's n, groups, alpha and nuisance
  counts; `tables` is [table, test_table].
* Near-duplicates: where the table has `dup_group`, `details["straddling_duplicates"]` counts the pairs of
  near-duplicates tested in different folds (None without the column).

`rows` (kept by the store beside the result): each scored row's out-of-fold prediction: key, target,
predicted, residual (predicted - target), fold.

Like every probe, it runs with the BLAS threads its `threads` option allows, one by default (`probes/threads.py`).

The fold, fit and metric helpers are shared with the `period` probe (its year regression).
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from scipy.stats import rankdata
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, GroupKFold, KFold

from artlens.probes.classify import key_codes, nuisance_keys, out_of_fold_by_key
from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows
from artlens.probes.groups import DUP_COLUMN, duplicate_report, group_ids
from artlens.probes.result import Result
from artlens.probes.stats import bootstrap_ci
from artlens.probes.threads import probe_threads

NAME = "regression"
ALPHAS = tuple(float(a) for a in np.logspace(-4, 3, 8))
SCATTER_CAP = 2000


@dataclass(frozen=True)
class Config(ProbeConfig):
    """Options:
        target: the numeric column to predict (ridge regression)
        group: split/bootstrap groups: rows sharing a value in any of these columns stay on one side of every
            fold and are resampled together
        nuisance: columns a nuisance model sees (its mean target per combination), to compare against
        test_table: fit on `table`, score on this table too (no refitting)
        test_group: the test table's group columns (default: `group`, where it has them)
        folds: outer cross-validation folds
        inner_folds: inner folds of the alpha sweep on each training fold
        alphas: the ridge regression's alpha grid (one value: no sweep)
    """
    target: str = ""
    group: tuple[str, ...] = ()       # split/bootstrap groups: rows sharing a value in any of these columns
    nuisance: tuple[str, ...] = ()    # columns a nuisance model sees (its mean target per combination)
    test_table: str | None = None     # fit on `table`, score on this table too (no refitting)
    test_group: tuple[str, ...] = ()  # the test table's group columns (default: `group`, where it has them)
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


def fold_numbers(splits, n: int) -> np.ndarray:
    """The outer fold (0..folds-1) each of n rows was tested in (the rows behind a result carry it)."""
    fold = np.full(n, -1, dtype=np.int64)
    for i, (_, test) in enumerate(splits):
        fold[test] = i
    return fold


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


# ------------------------------------------------------------------------------ nuisance baselines
#: The headline regression metrics a nuisance model and a transfer are scored on.
HEADLINE = ("spearman_rho", "pearson_r", "mae", "r2")


def mean_by_key(train_keys: np.ndarray, train_y: np.ndarray, test_keys: np.ndarray):
    """The nuisance regressor: each combination's mean target in the training rows; a combination unseen in
    training gets the training rows' mean. Returns the predictions and a mask of the unseen test rows."""
    sums: dict = {}
    for key, v in zip(train_keys, train_y):
        total = sums.setdefault(key, [0.0, 0])
        total[0] += v
        total[1] += 1
    unseen = np.array([key not in sums for key in test_keys], dtype=bool)
    overall = float(np.mean(train_y))
    pred = np.array([sums[key][0] / sums[key][1] if key in sums else overall for key in test_keys], dtype=float)
    return pred, unseen


def _r2(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0:
        return float("nan")
    return float(1 - np.sum((a - b) ** 2) / np.sum((a - a.mean()) ** 2))


def _score(name: str, a: np.ndarray, b: np.ndarray) -> float:
    return {"spearman_rho": spearman, "pearson_r": pearson, "mae": _mae, "r2": _r2}[name](a, b)


def _within(v: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """v minus the mean of its combination (over these rows: a combination of one row leaves 0)."""
    k = int(codes.max()) + 1
    return v - (np.bincount(codes, weights=v, minlength=k) / np.maximum(np.bincount(codes, minlength=k), 1))[codes]


def nuisance_regression_metrics(result: Result, y, pred, nuisance, codes, groups, n_boot: int, seed: int,
                                prefix: str = "") -> None:
    """Against the nuisance model's predictions (`nuisance`, out of fold): `<prefix>nuisance.<m>` (baseline:
    the embedding metric's own) and `<prefix><m>_gain_over_nuisance` (embedding minus nuisance; for MAE,
    nuisance minus embedding, so positive is always the embedding's gain; a paired interval, baseline 0) for m
    in HEADLINE; and `<prefix>within_nuisance.spearman_rho` / `.pearson_r`: the correlation of target and
    prediction after subtracting each nuisance combination's mean from both (recomputed in each resample on
    the resampled rows), baseline 0."""
    every = np.arange(len(y))
    for name in HEADLINE:
        base = result.baseline.get(prefix + name)
        fn = (lambda i, name=name: _score(name, y[i], nuisance[i]))
        result.add(f"{prefix}nuisance.{name}", fn(every), bootstrap_ci(fn, len(y), n_boot, seed, groups), base)
        sign = -1.0 if name == "mae" else 1.0

        def gain(i, name=name, sign=sign):
            return sign * (_score(name, y[i], pred[i]) - _score(name, y[i], nuisance[i]))
        result.add(f"{prefix}{name}_gain_over_nuisance", gain(every),
                   bootstrap_ci(gain, len(y), n_boot, seed, groups), 0.0)
    for name in ("spearman_rho", "pearson_r"):
        def within(i, name=name):
            return _score(name, _within(y[i], codes[i]), _within(pred[i], codes[i]))
        result.add(f"{prefix}within_nuisance.{name}", within(every),
                   bootstrap_ci(within, len(y), n_boot, seed, groups), 0.0)


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


def kept_columns(columns: dict[str, np.ndarray], keep: np.ndarray) -> dict[str, np.ndarray]:
    return {name: values[keep] for name, values in columns.items()}


def has_values(columns: dict[str, np.ndarray], names, n: int) -> np.ndarray:
    """Rows with a value in every one of `names` (all rows when there are none)."""
    ok = np.ones(n, dtype=bool)
    for name in names:
        ok &= np.array([v is not None for v in columns[name]], dtype=bool)
    return ok


def test_rows(s, cfg, columns: list[str], dim: int, require: list[str] | None = None):
    """The rows of `cfg.test_table` (its `where` is not applied: it filters the fit table only) and the
    group columns its interval resamples: `cfg.test_group` (all required), else `cfg.group` when the test
    table has them all, else () (rows resampled)."""
    wanted = cfg.test_group or cfg.group
    rows = load_rows(s, cfg.test_table, [*columns, *cfg.test_group],
                     require=[*(require or []), *cfg.test_group], optional=list(wanted))
    if rows.X.shape[1] != dim:
        raise ProbeDataError(f"test table {cfg.test_table!r} has {rows.X.shape[1]}-dimensional embeddings, "
                             f"{cfg.table!r} {dim}-dimensional: a model fit on one cannot score the other")
    grouped = tuple(wanted) if wanted and all(c in rows.columns for c in wanted) else ()
    return rows, grouped


def nuisance_details(cfg, keys: np.ndarray, unseen: int) -> dict:
    return {"columns": list(cfg.nuisance), "combinations": len(np.unique(keys.astype(str))),
            "unseen_in_training": int(unseen)}


def transfer_regression(s, result: Result, cfg, X, y, groups, keys, target_of, column: str,
                        prefix: str = "transfer.") -> dict:
    """Fit ridge once on every kept row of the fit table (alpha by the same inner CV), predict the test
    table's rows (`target_of(values)` → targets, NaN where unusable), and add `<prefix><m>` with baselines
    from the fit table's mean (MAE of predicting it; 0 for rho, r, R², mae_gain) and, with nuisance columns,
    the nuisance model fit on the fit table (`<prefix>nuisance.<m>`, gains, within-nuisance correlations)."""
    rows, grouped = test_rows(s, cfg, [column, *cfg.nuisance], X.shape[1])
    t = target_of(rows.columns[column])
    ok = np.isfinite(t)
    if ok.sum() < 2:
        raise ProbeDataError(f"test table {cfg.test_table!r}: {int(ok.sum())} usable rows of {column!r}")
    cols = kept_columns(rows.columns, ok)
    t_groups = group_ids(cols, grouped) if grouped else None
    model = fit_ridge(X, y, groups, cfg.alphas, cfg.inner_folds, cfg.seed)
    pred = model.predict(rows.X[ok])
    regression_metrics(result, t[ok], pred, np.full(len(pred), y.mean()), t_groups, cfg.n_boot, cfg.seed,
                       prefix=prefix)
    details = {"table": cfg.test_table, "n": int(ok.sum()), "missing_target": int((~ok).sum()),
               "chosen_alpha": float(model.best_params_["alpha"]), "grouped_by": list(grouped) if grouped
               else None, "n_groups": None if t_groups is None else len(np.unique(t_groups))}
    if cfg.nuisance:
        t_keys = nuisance_keys(cols, cfg.nuisance)
        npred, unseen = mean_by_key(keys, y, t_keys)
        nuisance_regression_metrics(result, t[ok], pred, npred, key_codes(t_keys), t_groups, cfg.n_boot,
                                    cfg.seed, prefix=prefix)
        details["nuisance"] = nuisance_details(cfg, t_keys, int(unseen.sum()))
    return details


@probe_threads
def run(s, cfg: Config) -> Result:
    if not cfg.target:
        raise ConfigError("regression probe needs target=<numeric column>")
    columns = [cfg.target, *cfg.group, *cfg.nuisance]
    rows = load_rows(s, cfg.table, columns, cfg.where, optional=[DUP_COLUMN])
    y = numeric_target(rows.columns[cfg.target], cfg.target)
    has_target = np.isfinite(y)
    has_group = has_values(rows.columns, cfg.group, len(y))
    keep = has_target & has_group
    if keep.sum() < 2 * cfg.folds or np.ptp(y[keep]) == 0:
        raise ProbeDataError(f"{int(keep.sum())} usable rows of {cfg.target!r}: too few or all equal")
    X, y, kept = rows.X[keep], y[keep], kept_columns(rows.columns, keep)
    groups = group_ids(kept, cfg.group)
    splits = regression_splits(len(y), groups, cfg.folds, cfg.seed)
    pred, baseline, chosen = out_of_fold(X, y, groups, splits, cfg.alphas, cfg.inner_folds, cfg.seed)
    result = Result(NAME, [cfg.table] + ([cfg.test_table] if cfg.test_table else []), cfg.as_dict(), n=len(y))
    regression_metrics(result, y, pred, baseline, groups, cfg.n_boot, cfg.seed)
    keys = nuisance_keys(kept, cfg.nuisance) if cfg.nuisance else None
    if cfg.nuisance:
        npred, unseen = out_of_fold_by_key(keys, y, splits, mean_by_key)
        nuisance_regression_metrics(result, y, pred, npred, key_codes(keys), groups, cfg.n_boot, cfg.seed)
        result.details["nuisance"] = nuisance_details(cfg, keys, unseen)
    if cfg.test_table:
        result.details["transfer"] = transfer_regression(
            s, result, cfg, X, y, groups, keys, lambda v: numeric_target(v, cfg.target), cfg.target)
    result.details.update(
        missing_target=int((~has_target).sum()), missing_group=int((~has_group).sum()),
        chosen_alpha=chosen, grouped_by=list(cfg.group) or None,
        n_groups=None if groups is None else len(np.unique(groups)), target_mean=float(y.mean()),
        target_sd=float(y.std()), scatter=scatter(y, pred, cfg.seed),
        straddling_duplicates=duplicate_report(kept, splits, len(y)))
    result.rows = pa.table({"key": pa.array(rows.keys[keep].astype(str)), "target": pa.array(y),
                            "predicted": pa.array(pred), "residual": pa.array(pred - y),
                            "fold": pa.array(fold_numbers(splits, len(y)))})
    return result
