"""`linear`: can a logistic-regression probe read a label off the embeddings?

Outer folds are stratified, or grouped with `group` so no group spans train and test; the regularisation C
is chosen inside each training fold by an inner cross-validated sweep. Classes with fewer than `min_count`
rows are dropped and reported. Metrics (accuracy, balanced accuracy, macro-F1, with majority / chance
baselines) come from the out-of-fold predictions.

* `group` (one column or several, `--group artist --group dup_group`): rows sharing a value in ANY of the
  columns are one group (connected components, `probes/groups.py`); groups never fall on both sides of a
  split and every interval resamples whole groups. Rows with a NULL label or a NULL in any group column are
  left out. `details["grouped_by"]` lists the columns, `details["n_groups"]` counts the combined groups.
* `nuisance` (one column or several): a model that sees only those columns, fit on each outer training
  fold (the same splits): the training fold's majority class per combination of the columns' values (as
  strings, NULL a value of its own; ties → the first class in sorted order); a combination the training
  fold lacks gets the training fold's majority. Reported: `nuisance.<m>` for m in accuracy,
  balanced_accuracy, macro_f1 (baseline: m's own) and `<m>_gain_over_nuisance`, embedding minus nuisance
  with a paired interval (one set of resampled rows scores both), baseline 0. `details["nuisance"]`:
  columns, combinations, unseen_in_training.
* `test_table`: a transfer. The classifier (C by the same inner CV, grouped as configured) is fit once on
  every kept row of `table` and predicts every row of `test_table` with a label (same `label` column and
  embedding dim, else a ProbeDataError); `where` and `min_count` apply to `table` only. `transfer.<m>` with
  intervals over the test table's combined groups: its `test_group` columns (e.g. prompt, when the
  fit table is grouped by artist), else `group` when it has every one, else rows;
  baselines from the fit table (`classify.transfer_classification_metrics`); with `nuisance`,
  `transfer.nuisance.<m>` and `transfer.<m>_gain_over_nuisance` from the nuisance model fit on `table`.
  Test classes the fit table lacks can only be wrong: `details["transfer"]["unseen_classes"]`.
* Near-duplicates: where the table has `dup_group`, `details["straddling_duplicates"]` counts the pairs of
  near-duplicates tested in different folds (None without the column).
* `rows` (kept by the store beside the result): each scored row's out-of-fold prediction: key, label,
  predicted, p_true (its fold model's probability of the true class), correct, fold; the highest p_true of
  a class are its most typical rows, the lowest its most confused.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold

from artlens.probes.classify import (classification_metrics, majority_by_key, nuisance_classification_metrics,
                                     nuisance_keys, out_of_fold_by_key, outer_splits,
                                     transfer_classification_metrics)
from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows
from artlens.probes.groups import DUP_COLUMN, duplicate_report, group_ids
from artlens.probes.regression import fold_numbers, kept_columns, nuisance_details, test_rows
from artlens.probes.result import Result
from artlens.probes.stats import drop_rare
from artlens.probes.threads import probe_threads

NAME = "linear"


@dataclass(frozen=True)
class Config(ProbeConfig):
    """Options:
        label: the column to predict (its classes)
        group: split/bootstrap groups: rows sharing a value in any of these columns stay on one side of every
            fold and are resampled together (e.g. artist, dup_group)
        nuisance: columns a nuisance model sees (its majority class per combination), to compare against
        test_table: fit on `table`, score on this table too (no refitting)
        test_group: the test table's group columns (default: `group`, where it has them)
        folds: outer cross-validation folds
        inner_folds: inner folds of the C sweep on each training fold
        min_count: the fewest rows a class needs to be kept
        Cs: the logistic regression's C grid (one value: no sweep)
    """
    label: str = ""
    group: tuple[str, ...] = ()       # split/bootstrap groups: rows sharing a value in any of these columns
    nuisance: tuple[str, ...] = ()    # columns a nuisance model sees (its majority class per combination)
    test_table: str | None = None     # fit on `table`, score on this table too (no refitting)
    test_group: tuple[str, ...] = ()  # the test table's group columns (default: `group`, where it has them)
    folds: int = 5
    inner_folds: int = 3
    min_count: int = 10
    Cs: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)


def _fit(X, y, groups, cfg: Config) -> GridSearchCV:
    inner = GroupKFold(cfg.inner_folds) if groups is not None else StratifiedKFold(
        cfg.inner_folds, shuffle=True, random_state=cfg.seed)
    search = GridSearchCV(LogisticRegression(max_iter=2000), {"C": list(cfg.Cs)}, cv=inner,
                          scoring="balanced_accuracy")
    return search.fit(X, y, groups=groups)


def _transfer(s, result: Result, cfg: Config, X, y, groups, keys) -> dict:
    rows, grouped = test_rows(s, cfg, [cfg.label, *cfg.nuisance], X.shape[1], require=[cfg.label])
    t = rows.columns[cfg.label].astype(str)
    t_groups = group_ids(rows.columns, grouped) if grouped else None
    model = _fit(X, y, groups, cfg)
    pred = model.predict(rows.X).astype(str)
    unseen = transfer_classification_metrics(result, t, pred, y, t_groups, cfg.n_boot, cfg.seed)
    details = {"table": cfg.test_table, "n": len(t), "classes": len(np.unique(t)), "unseen_classes": unseen,
               "chosen_C": float(model.best_params_["C"]), "grouped_by": list(grouped) if grouped else None,
               "n_groups": None if t_groups is None else len(np.unique(t_groups))}
    if cfg.nuisance:
        t_keys = nuisance_keys(rows.columns, cfg.nuisance)
        npred, missing = majority_by_key(keys, y, t_keys)
        nuisance_classification_metrics(result, t, pred, npred, t_groups, cfg.n_boot, cfg.seed,
                                        prefix="transfer.")
        details["nuisance"] = nuisance_details(cfg, t_keys, int(missing.sum()))
    return details


@probe_threads
def run(s, cfg: Config) -> Result:
    if not cfg.label:
        raise ConfigError("linear probe needs label=<column>")
    columns = [cfg.label, *cfg.group]
    rows = load_rows(s, cfg.table, [*columns, *cfg.nuisance], cfg.where, require=columns, optional=[DUP_COLUMN])
    y = rows.columns[cfg.label].astype(str)
    keep, dropped = drop_rare(y, cfg.min_count)
    if len(np.unique(y[keep])) < 2:
        raise ProbeDataError(f"label {cfg.label!r} has {len(np.unique(y[keep]))} class(es) with >= "
                             f"min_count={cfg.min_count} rows; need at least 2 (dropped: {dropped})")
    X, y, kept = rows.X[keep], y[keep], kept_columns(rows.columns, keep)
    groups = group_ids(kept, cfg.group)
    result = Result(NAME, [cfg.table] + ([cfg.test_table] if cfg.test_table else []), cfg.as_dict(), n=len(y))
    pred = np.empty(len(y), dtype=object)
    p_true = np.zeros(len(y))
    chosen = []
    splits = outer_splits(y, groups, cfg.folds, cfg.seed)
    for train, test in splits:
        model = _fit(X[train], y[train], None if groups is None else groups[train], cfg)
        pred[test] = model.predict(X[test])
        p_true[test] = true_class_probability(model, X[test], y[test])
        chosen.append(model.best_params_["C"])
    classification_metrics(result, y, pred.astype(str), groups, cfg.n_boot, cfg.seed)
    keys = nuisance_keys(kept, cfg.nuisance) if cfg.nuisance else None
    if cfg.nuisance:
        npred, unseen = out_of_fold_by_key(keys, y, splits, majority_by_key)
        nuisance_classification_metrics(result, y, pred.astype(str), npred, groups, cfg.n_boot, cfg.seed)
        result.details["nuisance"] = nuisance_details(cfg, keys, unseen)
    if cfg.test_table:
        result.details["transfer"] = _transfer(s, result, cfg, X, y, groups, keys)
    result.details.update(dropped_classes=dropped, chosen_C=chosen, classes=len(np.unique(y)),
                          grouped_by=list(cfg.group) or None,
                          n_groups=None if groups is None else len(np.unique(groups)),
                          straddling_duplicates=duplicate_report(kept, splits, len(y)))
    result.rows = pa.table({"key": pa.array(rows.keys[keep].astype(str)), "label": pa.array(y),
                            "predicted": pa.array(pred.astype(str)), "p_true": pa.array(p_true),
                            "correct": pa.array(pred.astype(str) == y),
                            "fold": pa.array(fold_numbers(splits, len(y)))})
    return result


def true_class_probability(model, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row's probability of its true class under a fold's model (0 for a class its training fold
    lacked): the typicality the rows behind the result are ranked by."""
    proba = model.predict_proba(X)
    column = {str(c): j for j, c in enumerate(model.classes_)}
    j = np.array([column.get(str(label), -1) for label in y])
    return np.where(j >= 0, proba[np.arange(len(y)), np.maximum(j, 0)], 0.0)
