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
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold, StratifiedKFold

from artlens.probes.classify import classification_metrics, outer_splits
from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows
from artlens.probes.periods import PRESENT, century, century_label, parse_period
from artlens.probes.regression import ALPHAS, out_of_fold, regression_metrics, scatter
from artlens.probes.result import Result
from artlens.probes.stats import drop_rare
from artlens.probes.threads import single_threaded

NAME = "period"
EXAMPLES = 20


@dataclass(frozen=True)
class Config(ProbeConfig):
    column: str = "period"
    group: str | None = None
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


def _century(result: Result, X, y, groups, splits, cfg: Config) -> list:
    """Out-of-fold century predictions → `century.*` metrics, per-class scores and the confusion matrix."""
    pred = np.empty(len(y), dtype=object)
    chosen = []
    for train, test in splits:
        model = _classifier(X[train], y[train], None if groups is None else groups[train], cfg)
        pred[test] = model.predict(X[test])
        chosen.append(float(model.best_params_["C"]))
    block = Result(NAME, result.tables, result.config, result.n)
    classification_metrics(block, y, pred.astype(str), groups, cfg.n_boot, cfg.seed)
    for name, metric in block.metrics.items():
        result.add(f"century.{name}", metric.value, metric.ci, block.baseline.get(name))
    result.per_class = block.per_class
    result.details["confusion"] = block.details["confusion"]
    return chosen


def _year(result: Result, X, year, groups, splits, cfg: Config) -> list:
    """Out-of-fold ridge predictions of the midpoint year → `year.*` metrics and a scatter for plots."""
    pred, baseline, chosen = out_of_fold(X, year, groups, splits, cfg.alphas, cfg.inner_folds, cfg.seed)
    regression_metrics(result, year, pred, baseline, groups, cfg.n_boot, cfg.seed, prefix="year.")
    result.details["year_scatter"] = scatter(year, pred, cfg.seed)
    return chosen


def _labelled(s, cfg: Config):
    """Embeddings, century labels, midpoint years and groups of the rows kept, plus what was left out."""
    columns = [cfg.column] + ([cfg.group] if cfg.group else [])
    rows = load_rows(s, cfg.table, columns, cfg.where)
    has_group = (np.array([g is not None for g in rows.columns[cfg.group]], dtype=bool) if cfg.group
                 else np.ones(len(rows.keys), dtype=bool))
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
    groups = rows.columns[cfg.group][index].astype(str) if cfg.group else None
    left_out = {"parsing": report, "missing_group": int((~has_group).sum()), "dropped_centuries": dropped}
    return rows.X[index], labels[keep], year, groups, left_out


@single_threaded
def run(s, cfg: Config) -> Result:
    if not cfg.column:
        raise ConfigError("period probe needs column=<period column>")
    X, y, year, groups, left_out = _labelled(s, cfg)
    result = Result(NAME, [cfg.table], cfg.as_dict(), n=len(y))
    splits = outer_splits(y, groups, cfg.folds, cfg.seed)
    chosen_C = _century(result, X, y, groups, splits, cfg)
    chosen_alpha = _year(result, X, year, groups, splits, cfg)
    labels, counts = np.unique(y, return_counts=True)
    result.details.update(
        **left_out, centuries=dict(zip(labels.tolist(), counts.tolist())), chosen_C=chosen_C,
        chosen_alpha=chosen_alpha, grouped_by=cfg.group,
        n_groups=None if groups is None else len(np.unique(groups)))
    return result
