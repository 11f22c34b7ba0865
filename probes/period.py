"""`period`: do the embeddings know when a painting was made?

The `column` of period strings ('XV century', '1701 to 1725', 'c. 1810', '1890s', ...) is parsed by
`probes.periods.parse_period`; values it cannot read without guessing ('before 1300', 'unknown') and NULLs
are left out and counted, with up to 20 unparsed examples in `details["parsing"]`. Each span becomes its
century (of the midpoint) and its midpoint year. Centuries with fewer than `min_count` rows are dropped and
reported; both tasks below then use the same rows and the same outer folds (stratified by century, grouped
with `group`, e.g. artist, so no group spans train and test):

* `century.*`: logistic regression with C chosen by inner CV in each training fold (as in `linear`, but
  the inner folds are stratified also when grouped, so rare centuries reach every inner fold);
  accuracy, balanced accuracy and macro-F1 with majority / chance baselines, per-century scores, confusion.
* `year.*`: ridge regression on the midpoint year with alpha chosen by inner CV (as in `regression`); MAE
  against predicting the training fold's mean year, Spearman's rho, Pearson's r, R², mae_gain.

Every metric has a 95% bootstrap interval (over groups when grouped). The C grid reaches 1000: on
unit-norm CLIP embeddings the best C is often 100 (the top of `linear`'s grid).

`group`, `nuisance`, `test_table` and `test_group` mean what they mean in `linear` and `regression`; the names of the
figures they add put the evaluation first, then the task, then the figure:

* `group` (one column or several): rows sharing a value in ANY of the columns are one group (connected
  components); rows with a NULL in any group column are left out (`details["missing_group"]`).
* `nuisance`: the training fold's majority century and mean year per combination of the nuisance
  columns' values (unseen combination → the training fold's majority / mean) give
  `century.nuisance.<m>`, `century.<m>_gain_over_nuisance` (m: accuracy, balanced_accuracy, macro_f1),
  `year.nuisance.<m>`, `year.<m>_gain_over_nuisance` (m: spearman_rho, pearson_r, mae, r2) and
  `year.within_nuisance.spearman_rho` / `.pearson_r`; `details["nuisance"]` counts combinations and test
  rows whose combination their training fold lacked (for the century model; the year model's are the same).
* `test_table`: both models are fit once on every kept row of `table` and score every parsed row of
  `test_table` (its `column`, parsed the same way; no `min_count`, no `where`: those filter `table`):
  `transfer.century.<m>`, `transfer.year.<m>` (and with nuisance `transfer.century.nuisance.<m>`,
  `transfer.year.within_nuisance.*`, ...); centuries the fit table lacks are counted in
  `details["transfer"]["unseen_centuries"]`.
* Near-duplicates: where the table has `dup_group`, `details["straddling_duplicates"]` counts the pairs of
  near-duplicates tested in different folds (None without the column).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold

from artlens.probes.classify import (classification_metrics, key_codes, majority_by_key,
                                     nuisance_classification_metrics, nuisance_keys, out_of_fold_by_key,
                                     outer_splits, transfer_classification_metrics)
from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows
from artlens.probes.groups import DUP_COLUMN, duplicate_report, group_ids
from artlens.probes.periods import PRESENT, century, century_label, parse_period
from artlens.probes.regression import (ALPHAS, fit_ridge, has_values, kept_columns, mean_by_key,
                                       nuisance_details, nuisance_regression_metrics, out_of_fold,
                                       regression_metrics, scatter, test_rows)
from artlens.probes.result import Result
from artlens.probes.stats import drop_rare
from artlens.probes.threads import probe_threads

NAME = "period"
EXAMPLES = 20


@dataclass(frozen=True)
class Config(ProbeConfig):
    """Options:
        column: the column of period strings ('XV century', '1701 to 1725', 'c. 1810', ...)
        group: split/bootstrap groups: rows sharing a value in any of these columns stay on one side of every
            fold and are resampled together
        nuisance: columns a nuisance model sees (majority century / mean year per value)
        test_table: fit on `table`, score on this table too (no refitting)
        test_group: the test table's group columns (default: `group`, where it has them)
        folds: outer cross-validation folds
        inner_folds: inner folds of the C and alpha sweeps on each training fold
        min_count: the fewest rows a century needs to be kept
        Cs: the century classifier's C grid
        alphas: the year regression's alpha grid
        present: the year 'present' / a century in progress ends at
    """
    column: str = "period"
    group: tuple[str, ...] = ()       # split/bootstrap groups: rows sharing a value in any of these columns
    nuisance: tuple[str, ...] = ()    # columns a nuisance model sees (majority century / mean year per value)
    test_table: str | None = None     # fit on `table`, score on this table too (no refitting)
    test_group: tuple[str, ...] = ()  # the test table's group columns (default: `group`, where it has them)
    folds: int = 5
    inner_folds: int = 3
    min_count: int = 10
    Cs: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0)
    alphas: tuple[float, ...] = ALPHAS
    present: int = PRESENT          # the year 'present' / a century in progress ends at


def parse_column(values: np.ndarray, present: int) -> tuple[list, dict]:
    """Parsed spans (None where unreadable) and the parsing report: counts and the commonest failures."""
    spans = [parse_period(v, present) for v in values]
    unparsed = Counter(str(v) for v, p in zip(values, spans) if p is None and v is not None)
    report = {"values": len(values), "parsed": sum(p is not None for p in spans),
              "unparsed": sum(unparsed.values()), "missing": sum(v is None for v in values),
              "approximate": sum(bool(p is not None and p.approximate) for p in spans),
              "unparsed_examples": [{"value": v, "count": c} for v, c in unparsed.most_common(EXAMPLES)]}
    return spans, report


def _classifier(X, y, groups, cfg: Config) -> GridSearchCV:
    kind = StratifiedGroupKFold if groups is not None else StratifiedKFold
    inner = kind(cfg.inner_folds, shuffle=True, random_state=cfg.seed)
    search = GridSearchCV(LogisticRegression(max_iter=2000), {"C": list(cfg.Cs)}, cv=inner,
                          scoring="balanced_accuracy")
    return search.fit(X, y, groups=groups)


def _century(result: Result, X, y, groups, splits, cfg: Config, keys) -> tuple[list, int]:
    """Out-of-fold century predictions → `century.*` metrics, per-class scores and the confusion matrix;
    with nuisance columns also `century.nuisance.*` and `century.*_gain_over_nuisance`."""
    pred = np.empty(len(y), dtype=object)
    chosen = []
    for train, test in splits:
        model = _classifier(X[train], y[train], None if groups is None else groups[train], cfg)
        pred[test] = model.predict(X[test])
        chosen.append(float(model.best_params_["C"]))
    block = Result(NAME, result.tables, result.config, result.n)
    classification_metrics(block, y, pred.astype(str), groups, cfg.n_boot, cfg.seed)
    unseen = 0
    if keys is not None:
        npred, unseen = out_of_fold_by_key(keys, y, splits, majority_by_key)
        nuisance_classification_metrics(block, y, pred.astype(str), npred, groups, cfg.n_boot, cfg.seed)
    for name, metric in block.metrics.items():
        result.add(f"century.{name}", metric.value, metric.ci, block.baseline.get(name))
    result.per_class = block.per_class
    result.details["confusion"] = block.details["confusion"]
    return chosen, unseen


def _year(result: Result, X, year, groups, splits, cfg: Config, keys) -> list:
    """Out-of-fold ridge predictions of the midpoint year → `year.*` metrics and a scatter for plots; with
    nuisance columns also `year.nuisance.*`, `year.*_gain_over_nuisance` and `year.within_nuisance.*`."""
    pred, baseline, chosen = out_of_fold(X, year, groups, splits, cfg.alphas, cfg.inner_folds, cfg.seed)
    regression_metrics(result, year, pred, baseline, groups, cfg.n_boot, cfg.seed, prefix="year.")
    if keys is not None:
        npred, _ = out_of_fold_by_key(keys, year, splits, mean_by_key)
        nuisance_regression_metrics(result, year, pred, npred, key_codes(keys), groups, cfg.n_boot, cfg.seed,
                                    prefix="year.")
    result.details["year_scatter"] = scatter(year, pred, cfg.seed)
    return chosen


def _spans(values: np.ndarray, present: int):
    """Which period strings parse, and their century labels and midpoint years ("" and NaN where not)."""
    spans = [parse_period(v, present) for v in values]
    ok = np.array([p is not None for p in spans], dtype=bool)
    labels = np.array([century_label(century(*p)) if p else "" for p in spans], dtype=str)
    year = np.array([(p[0] + p[1]) / 2 if p else np.nan for p in spans], dtype=float)
    return ok, labels, year


def _labelled(s, cfg: Config):
    """Embeddings, century labels, midpoint years, groups and kept columns of the rows kept, plus what was
    left out."""
    columns = [cfg.column, *cfg.group, *cfg.nuisance]
    rows = load_rows(s, cfg.table, columns, cfg.where, optional=[DUP_COLUMN])
    has_group = has_values(rows.columns, cfg.group, len(rows.keys))
    spans, report = parse_column(rows.columns[cfg.column][has_group], cfg.present)
    parsed = [p for p in spans if p is not None]
    index = np.flatnonzero(has_group)[np.array([p is not None for p in spans], dtype=bool)]
    labels = np.array([century_label(century(*p)) for p in parsed], dtype=str)
    keep, dropped = drop_rare(labels, cfg.min_count)
    if len(np.unique(labels[keep])) < 2:
        raise ProbeDataError(f"{cfg.column!r}: fewer than two centuries with {cfg.min_count}+ rows "
                             f"({report['parsed']} parsed, dropped {dropped})")
    year = np.array([(p[0] + p[1]) / 2 for p in parsed], dtype=float)[keep]
    index = index[keep]
    kept = {name: values[index] for name, values in rows.columns.items()}
    groups = group_ids(kept, cfg.group)
    left_out = {"parsing": report, "missing_group": int((~has_group).sum()), "dropped_centuries": dropped}
    return rows.X[index], labels[keep], year, groups, kept, left_out


def _transfer(s, result: Result, cfg: Config, X, y, year, groups, keys) -> dict:
    """Fit once on every kept row of `table`, score the test table's parsed rows: `transfer.century.*` and
    `transfer.year.*` (with nuisance: `transfer.century.nuisance.*`, `transfer.year.nuisance.*`, ...)."""
    rows, grouped = test_rows(s, cfg, [cfg.column, *cfg.nuisance], X.shape[1])
    ok, t_labels, t_year = _spans(rows.columns[cfg.column], cfg.present)
    if ok.sum() < 2:
        raise ProbeDataError(f"test table {cfg.test_table!r}: {int(ok.sum())} parsed rows of {cfg.column!r}")
    cols = kept_columns(rows.columns, ok)
    t_X, t_labels, t_year = rows.X[ok], t_labels[ok], t_year[ok]
    t_groups = group_ids(cols, grouped) if grouped else None
    classifier = _classifier(X, y, groups, cfg)
    pred = classifier.predict(t_X).astype(str)
    unseen = transfer_classification_metrics(result, t_labels, pred, y, t_groups, cfg.n_boot, cfg.seed,
                                             prefix="transfer.century.")
    ridge = fit_ridge(X, year, groups, cfg.alphas, cfg.inner_folds, cfg.seed)
    t_pred = ridge.predict(t_X)
    regression_metrics(result, t_year, t_pred, np.full(len(t_year), year.mean()), t_groups, cfg.n_boot,
                       cfg.seed, prefix="transfer.year.")
    details = {"table": cfg.test_table, "n": int(ok.sum()), "unparsed_or_missing": int((~ok).sum()),
               "unseen_centuries": unseen, "chosen_C": float(classifier.best_params_["C"]),
               "chosen_alpha": float(ridge.best_params_["alpha"]),
               "grouped_by": list(grouped) if grouped else None,
               "n_groups": None if t_groups is None else len(np.unique(t_groups))}
    if cfg.nuisance:
        t_keys = nuisance_keys(cols, cfg.nuisance)
        npred, missing = majority_by_key(keys, y, t_keys)
        nuisance_classification_metrics(result, t_labels, pred, npred, t_groups, cfg.n_boot, cfg.seed,
                                        prefix="transfer.century.")
        nyear, _ = mean_by_key(keys, year, t_keys)
        nuisance_regression_metrics(result, t_year, t_pred, nyear, key_codes(t_keys), t_groups, cfg.n_boot,
                                    cfg.seed, prefix="transfer.year.")
        details["nuisance"] = nuisance_details(cfg, t_keys, int(missing.sum()))
    return details


@probe_threads
def run(s, cfg: Config) -> Result:
    if not cfg.column:
        raise ConfigError("period probe needs column=<period column>")
    X, y, year, groups, kept, left_out = _labelled(s, cfg)
    result = Result(NAME, [cfg.table] + ([cfg.test_table] if cfg.test_table else []), cfg.as_dict(), n=len(y))
    splits = outer_splits(y, groups, cfg.folds, cfg.seed)
    keys = nuisance_keys(kept, cfg.nuisance) if cfg.nuisance else None
    chosen_C, unseen = _century(result, X, y, groups, splits, cfg, keys)
    chosen_alpha = _year(result, X, year, groups, splits, cfg, keys)
    if keys is not None:
        result.details["nuisance"] = nuisance_details(cfg, keys, unseen)
    if cfg.test_table:
        result.details["transfer"] = _transfer(s, result, cfg, X, y, year, groups, keys)
    labels, counts = np.unique(y, return_counts=True)
    result.details.update(
        **left_out, centuries=dict(zip(labels.tolist(), counts.tolist())), chosen_C=chosen_C,
        chosen_alpha=chosen_alpha, grouped_by=list(cfg.group) or None,
        n_groups=None if groups is None else len(np.unique(groups)),
        straddling_duplicates=duplicate_report(kept, splits, len(y)))
    return result
