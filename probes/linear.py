"""`linear`: can a logistic-regression probe read a label off the embeddings?

Outer folds are stratified, or grouped with `group` (e.g. artist) so no group spans train and test; the
regularisation C is chosen inside each training fold by an inner cross-validated sweep. Classes with fewer
than `min_count` rows are dropped and reported. Metrics come from the out-of-fold predictions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold

from artlens.probes.classify import classification_metrics, outer_splits
from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import load_rows
from artlens.probes.result import Result
from artlens.probes.stats import drop_rare
from artlens.probes.threads import single_threaded

NAME = "linear"


@dataclass(frozen=True)
class Config(ProbeConfig):
    label: str = ""
    group: str | None = None
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


@single_threaded
def run(s, cfg: Config) -> Result:
    if not cfg.label:
        raise ConfigError("linear probe needs label=<column>")
    columns = [cfg.label] + ([cfg.group] if cfg.group else [])
    rows = load_rows(s, cfg.table, columns, cfg.where, require=columns)
    y = rows.columns[cfg.label].astype(str)
    keep, dropped = drop_rare(y, cfg.min_count)
    X, y = rows.X[keep], y[keep]
    groups = rows.columns[cfg.group][keep].astype(str) if cfg.group else None
    result = Result(NAME, [cfg.table], cfg.as_dict(), n=len(y))
    pred = np.empty(len(y), dtype=object)
    chosen = []
    for train, test in outer_splits(y, groups, cfg.folds, cfg.seed):
        model = _fit(X[train], y[train], None if groups is None else groups[train], cfg)
        pred[test] = model.predict(X[test])
        chosen.append(model.best_params_["C"])
    classification_metrics(result, y, pred.astype(str), groups, cfg.n_boot, cfg.seed)
    result.details.update(dropped_classes=dropped, chosen_C=chosen, classes=len(np.unique(y)),
                          grouped_by=cfg.group, n_groups=None if groups is None else len(np.unique(groups)))
    return result
