"""`separability`: can two sets of embeddings (e.g. AI-generated vs human-made paintings) be told apart?

The sets are `table` vs `against` (another table of the same dim; `where` filters the first table only), or
the two values of a column `group` of one table (set A is the first value in sorted order). Set A is the
positive class. Metrics, each with a 95% bootstrap interval (over rows) and baseline 0.5:

- `auc`, `balanced_accuracy`: out-of-fold logistic regression (class_weight="balanced", stratified outer
  folds, C chosen by an inner stratified sweep on each training fold, no sweep when `Cs` has one value).
- `pc1_auc`, `pc2_auc`: AUC of the raw first / second principal-component scores. The PCA and the sign of
  each component (chosen so the training-fold AUC is >= 0.5) are fit on each training fold only and applied
  to its test fold, so under no difference these centre on 0.5 instead of being pushed above it.
- with `holdout_by` (a column of set A, e.g. generative_model), `holdout_auc`: for each value g, train on A's
  rows not in g plus B minus a held-out share, test on A's g rows vs that share. B is shuffled once and cut
  into disjoint shares in proportion to A's group sizes. Reported: the mean over groups (interval from a
  bootstrap over the per-group AUCs); `per_class` holds each group's AUC with a row-bootstrap interval.
  Rows of A with NULL in `holdout_by` are only ever used for training.

`details`: set sizes and per-set recall, chosen C per fold, explained variance ratios and `pca` (first two
components of a PCA of all rows, fit for plotting only; at most 3000 points, a seeded subsample).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from artlens.probes.classify import outer_splits
from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows
from artlens.probes.result import Result
from artlens.probes.stats import bootstrap_ci
from artlens.probes.threads import single_threaded

NAME = "separability"
MAX_POINTS = 3000


@dataclass(frozen=True)
class Config(ProbeConfig):
    against: str | None = None
    group: str | None = None
    holdout_by: str | None = None
    folds: int = 5
    inner_folds: int = 3
    Cs: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)


@dataclass
class Sets:
    X: np.ndarray                 # float64 (n, dim), set A rows first
    y: np.ndarray                 # 1 = set A, 0 = set B
    names: tuple[str, str]
    tables: list[str]
    holdout: np.ndarray | None    # holdout_by value per row (None for set B and NULLs)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC of `score` for y == 1 (Mann-Whitney, ties count half); NaN when a class is missing."""
    pos = y == 1
    n1 = int(pos.sum())
    n0 = len(y) - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    return float((rankdata(score)[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    pos = y == 1
    if pos.all() or not pos.any():
        return float("nan")
    return float((pred[pos].mean() + (1 - pred[~pos]).mean()) / 2)


def _load(s, cfg: Config) -> Sets:
    if (cfg.against is None) == (cfg.group is None):
        raise ConfigError("separability needs exactly one of against=<table> or group=<two-valued column>")
    if cfg.against == cfg.table:
        raise ConfigError(f"separability: against={cfg.against!r} is the table itself")
    extra = [cfg.holdout_by] if cfg.holdout_by else []
    if cfg.against is not None:
        a = load_rows(s, cfg.table, extra, cfg.where)
        b = load_rows(s, cfg.against, [])
        if a.X.shape[1] != b.X.shape[1]:
            raise ProbeDataError(f"tables {cfg.table!r} (dim {a.X.shape[1]}) and {cfg.against!r} "
                                 f"(dim {b.X.shape[1]}) have different dims; their embeddings cannot be compared")
        X, n_a, names = np.vstack([a.X, b.X]), len(a.X), (cfg.table, cfg.against)
        holdout = a.columns[cfg.holdout_by] if cfg.holdout_by else None
        tables = [cfg.table, cfg.against]
    else:
        rows = load_rows(s, cfg.table, [cfg.group] + extra, cfg.where, require=[cfg.group])
        values = rows.columns[cfg.group].astype(str)
        found = np.unique(values)
        if len(found) != 2:
            raise ProbeDataError(f"column {cfg.group!r} of {cfg.table!r} has {len(found)} value(s) "
                                 f"{found.tolist()[:10]}; separability needs exactly two (filter with where=)")
        order = np.argsort(values != found[0], kind="stable")       # set A (first value) first
        X, n_a, names = rows.X[order], int((values == found[0]).sum()), (str(found[0]), str(found[1]))
        holdout = rows.columns[cfg.holdout_by][order][:n_a] if cfg.holdout_by else None
        tables = [cfg.table]
    y = np.r_[np.ones(n_a, int), np.zeros(len(X) - n_a, int)]
    if holdout is not None:
        holdout = np.r_[np.asarray(holdout, dtype=object), np.full(len(X) - n_a, None, dtype=object)]
    return Sets(X.astype(np.float64), y, names, tables, holdout)


def _fit(X: np.ndarray, y: np.ndarray, cfg: Config):
    """Balanced logistic regression; C from an inner stratified sweep when there is more than one."""
    model = LogisticRegression(C=cfg.Cs[0], class_weight="balanced", max_iter=2000)
    if len(cfg.Cs) == 1:
        return model.fit(X, y), cfg.Cs[0]
    inner = StratifiedKFold(cfg.inner_folds, shuffle=True, random_state=cfg.seed)
    search = GridSearchCV(model, {"C": list(cfg.Cs)}, cv=inner, scoring="roc_auc").fit(X, y)
    return search.best_estimator_, search.best_params_["C"]


def _out_of_fold(X: np.ndarray, y: np.ndarray, cfg: Config):
    """Out-of-fold decision scores, in-fold PC1/PC2 scores (oriented on the training fold), chosen Cs."""
    score, pcs, chosen = np.empty(len(y)), np.empty((len(y), 2)), []
    for train, test in outer_splits(y, None, cfg.folds, cfg.seed):
        model, C = _fit(X[train], y[train], cfg)
        score[test] = model.decision_function(X[test])
        chosen.append(C)
        pca = PCA(2, svd_solver="covariance_eigh").fit(X[train])
        fitted = pca.transform(X[train])
        sign = np.array([1.0 if auc(y[train], fitted[:, j]) >= 0.5 else -1.0 for j in range(2)])
        pcs[test] = pca.transform(X[test]) * sign
    return score, pcs, chosen


def _b_shares(sets: Sets, values: list, seed: int) -> list[np.ndarray]:
    """Set B shuffled once and cut into disjoint shares sized like A's groups (relative to all of A)."""
    a = sets.y == 1
    b = np.random.default_rng(seed).permutation(np.flatnonzero(~a))
    sizes = np.array([np.sum(sets.holdout[a] == g) for g in values])
    cuts = np.round(np.cumsum(sizes) / a.sum() * len(b)).astype(int)
    return np.split(b[:cuts[-1]], cuts[:-1])


def _holdout(sets: Sets, cfg: Config) -> dict:
    """Per value of `holdout_by`: AUC of a model that never saw that value's rows of set A."""
    values = sorted({str(v) for v in sets.holdout[sets.y == 1] if v is not None})
    if len(values) < 2:
        raise ProbeDataError(f"holdout_by={cfg.holdout_by!r} needs at least two values in set A, got {values}")
    labels = np.array([None if v is None else str(v) for v in sets.holdout], dtype=object)
    sets = Sets(sets.X, sets.y, sets.names, sets.tables, labels)
    out = {}
    for i, (g, b_test) in enumerate(zip(values, _b_shares(sets, values, cfg.seed))):
        test = np.concatenate([np.flatnonzero(labels == g), b_test])
        train = np.setdiff1d(np.arange(len(sets.y)), test)
        model, C = _fit(sets.X[train], sets.y[train], cfg)
        yt, st = sets.y[test], model.decision_function(sets.X[test])
        ci = bootstrap_ci(lambda j: auc(yt[j], st[j]), len(test), cfg.n_boot, cfg.seed + i)
        out[g] = {"auc": auc(yt, st), "ci": list(ci), "n_test_a": int(yt.sum()), "n_test_b": len(b_test), "C": C}
    return out


def _pca_details(sets: Sets, seed: int) -> dict:
    """A PCA of all rows for plots: explained variance and the first two components (A's mean on the + side)."""
    k = min(10, *sets.X.shape)
    pca = PCA(k, svd_solver="covariance_eigh").fit(sets.X)
    coords = pca.transform(sets.X)[:, :2]
    a = sets.y == 1
    coords = coords * np.where(coords[a].mean(0) >= coords[~a].mean(0), 1.0, -1.0)
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(coords), MAX_POINTS, replace=False)) if len(coords) > MAX_POINTS \
        else np.arange(len(coords))
    names = np.array(sets.names, dtype=object)[1 - sets.y[keep]]
    return {"explained_variance_ratio": pca.explained_variance_ratio_.tolist(),
            "pca": {"x": coords[keep, 0].tolist(), "y": coords[keep, 1].tolist(), "set": names.tolist()}}


@single_threaded
def run(s, cfg: Config) -> Result:
    sets = _load(s, cfg)
    X, y = sets.X, sets.y
    if min(y.sum(), len(y) - y.sum()) < cfg.folds:
        raise ProbeDataError(f"sets {sets.names} have {int(y.sum())} and {int(len(y) - y.sum())} rows; "
                             f"each needs at least folds={cfg.folds}")
    result = Result(NAME, sets.tables, cfg.as_dict(), n=len(y))
    score, pcs, chosen = _out_of_fold(X, y, cfg)
    pred = (score > 0).astype(int)
    columns = {"auc": score, "pc1_auc": pcs[:, 0], "pc2_auc": pcs[:, 1]}
    for name, column in columns.items():
        ci = bootstrap_ci(lambda i, c=column: auc(y[i], c[i]), len(y), cfg.n_boot, cfg.seed)
        result.add(name, auc(y, column), ci, 0.5)
        if name == "auc":
            ci = bootstrap_ci(lambda i: balanced_accuracy(y[i], pred[i]), len(y), cfg.n_boot, cfg.seed)
            result.add("balanced_accuracy", balanced_accuracy(y, pred), ci, 0.5)
    if cfg.holdout_by:
        result.per_class = _holdout(sets, cfg)
        aucs = np.array([g["auc"] for g in result.per_class.values()], dtype=float)
        aucs = aucs[np.isfinite(aucs)]
        if len(aucs) == 0:
            raise ProbeDataError(f"holdout_by={cfg.holdout_by!r}: no group had rows of both sets to test")
        ci = bootstrap_ci(lambda i: float(aucs[i].mean()), len(aucs), cfg.n_boot, cfg.seed)
        result.add("holdout_auc", aucs.mean(), ci, 0.5)
    a = y == 1
    result.details.update(
        sets={sets.names[0]: {"n": int(a.sum()), "recall": float(pred[a].mean())},
              sets.names[1]: {"n": int((~a).sum()), "recall": float(1 - pred[~a].mean())}},
        positive=sets.names[0], chosen_C=chosen, holdout_by=cfg.holdout_by, **_pca_details(sets, cfg.seed))
    return result
