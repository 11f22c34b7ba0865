"""The measurements of the `deformation` probe, each on a `Paired` set: clean embeddings, deformed ones and
the clean row each deformed row came from. Intervals are bootstraps over paintings (or over clusters of
the probe's `group`, its columns combined): all rows of one painting move together."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
from scipy.stats import rankdata
from sklearn.linear_model import LogisticRegression

from artlens.probes.classify import outer_splits
from artlens.probes.groups import fold_of_rows, straddling_pairs
from artlens.probes.data import ProbeDataError
from artlens.probes.regression import pearson
from artlens.probes.separability import auc
from artlens.probes.stats import bootstrap_ci, drop_rare, permutation_p

BETWEEN_CAP = 2000          # paintings sampled for the between-painting shift baseline


@dataclass
class Paired:
    X: np.ndarray                   # clean embeddings, unit rows (n, dim), float64
    keys: np.ndarray                # clean keys (n)
    clusters: np.ndarray            # bootstrap / fold cluster of each clean row: its group, else its key
    grouped: bool                   # clusters come from the `group` columns
    labels: np.ndarray | None       # label of each clean row (None where NULL), when asked for
    D: np.ndarray                   # deformed embeddings, unit rows (m, dim)
    row: np.ndarray                 # clean row of each deformed row (m)
    deformation: np.ndarray         # (m) str
    severity: np.ndarray            # (m) int
    ssim: np.ndarray                # (m) float
    dups: np.ndarray | None = None  # `dup_group` of each clean row, where the clean table has it
    straddling: int | None = None   # near-duplicate pairs split by the label classifier's folds (set there)

    @property
    def names(self) -> list[str]:
        return sorted(set(self.deformation.tolist()))

    @property
    def severities(self) -> list[int]:
        return sorted(set(int(s) for s in self.severity))

    def cells(self) -> Iterator[tuple[str, int, np.ndarray]]:
        """(deformation, severity, indices of its deformed rows) for every cell that has rows."""
        for name in self.names:
            for sev in self.severities:
                idx = np.flatnonzero((self.deformation == name) & (self.severity == sev))
                if len(idx):
                    yield name, sev, idx

    def cluster_of(self, idx: np.ndarray) -> np.ndarray | None:
        """Bootstrap clusters of these deformed rows: their clean rows' groups (None: rows resample alone)."""
        return self.clusters[self.row[idx]] if self.grouped else None


def unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def mean_ci(values: np.ndarray, groups: np.ndarray | None, n_boot: int, seed: int) -> dict:
    """Mean, 95% bootstrap interval, standard deviation and n of a per-painting value."""
    values = np.asarray(values, dtype=float)
    ci = bootstrap_ci(lambda i: float(values[i].mean()), len(values), n_boot, seed, groups)
    return {"value": float(values.mean()), "ci": list(ci), "sd": float(values.std()), "n": len(values)}


def shifts(p: Paired) -> np.ndarray:
    """1 − cos(deformed, its clean embedding) of every deformed row."""
    return 1.0 - np.einsum("ij,ij->i", p.D, p.X[p.row])


def between_shift(X: np.ndarray, seed: int) -> float:
    """Mean 1 − cos between two different clean paintings: the shift of replacing the painting."""
    idx = np.arange(len(X))
    if len(X) > BETWEEN_CAP:
        idx = np.sort(np.random.default_rng(seed).choice(len(X), BETWEEN_CAP, replace=False))
    S = X[idx] @ X[idx].T
    n = len(idx)
    return float(1.0 - (S.sum() - np.trace(S)) / max(n * (n - 1), 1))


# ------------------------------------------------------------------ detectability
def detect_auc(p: Paired, idx: np.ndarray, folds: int, C: float, n_boot: int, seed: int) -> dict:
    """Out-of-fold AUC of a balanced logistic regression telling these deformed rows from the clean rows of
    the same paintings; folds grouped by cluster, so no painting is in train and test."""
    clean_rows = np.unique(p.row[idx])
    Z = np.vstack([p.X[clean_rows], p.D[idx]])
    y = np.r_[np.zeros(len(clean_rows), int), np.ones(len(idx), int)]
    groups = np.r_[p.clusters[clean_rows], p.clusters[p.row[idx]]].astype(str)
    if len(np.unique(groups)) < folds:
        raise ProbeDataError(f"{len(np.unique(groups))} paintings/groups cannot fill folds={folds}")
    score = np.empty(len(y))
    for train, test in outer_splits(y, groups, folds, seed):
        model = LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(Z[train], y[train])
        score[test] = model.decision_function(Z[test])
    value = auc(y, score)
    lo, hi = bootstrap_ci(lambda i: auc(y[i], score[i]), len(y), n_boot, seed, groups)
    # Basic (reverse-percentile) interval: a painting drawn twice by the cluster bootstrap is also compared
    # with its own deformed copy, which the classifier nearly always ranks right, so resampled AUCs sit above
    # the estimate (on the real paintings the point estimate fell at the percentile interval's lower end).
    # Reflecting the percentiles around the estimate removes that shift.
    return {"value": value, "ci": [max(0.0, 2 * value - hi), min(1.0, 2 * value - lo)], "n": len(clean_rows)}


# ------------------------------------------------------------------ label stability
def linear_predictions(p: Paired, folds: int, C: float, min_count: int, seed: int):
    """Cross-fitted predictions of the label: a logistic regression fit on the clean embeddings of the
    training folds predicts the clean and the deformed images of the test fold's paintings.
    Returns (clean predictions (n, None where unscored), deformed predictions (m), dropped rare classes)."""
    has = np.array([v is not None for v in p.labels], dtype=bool)
    rows = np.flatnonzero(has)
    y = p.labels[rows].astype(str)
    keep, dropped = drop_rare(y, min_count)
    rows, y = rows[keep], y[keep]
    if len(np.unique(y)) < 2:
        raise ProbeDataError(f"the label needs at least two classes with >= min_count={min_count} rows each")
    pred_clean = np.full(len(p.X), None, dtype=object)
    pred_def = np.full(len(p.D), None, dtype=object)
    groups = p.clusters[rows].astype(str) if p.grouped else None
    splits = outer_splits(y, groups, folds, seed)
    if p.dups is not None:  # near-duplicate pairs of clean rows whose paintings fall in different folds
        p.straddling = straddling_pairs(p.dups[rows], fold_of_rows(len(rows), splits))
    for train, test in splits:
        model = LogisticRegression(C=C, max_iter=2000).fit(p.X[rows[train]], y[train])
        pred_clean[rows[test]] = model.predict(p.X[rows[test]])
        deformed = np.isin(p.row, rows[test])
        if deformed.any():
            pred_def[deformed] = model.predict(p.D[deformed])
    return pred_clean, pred_def, dropped


@dataclass
class Flips:
    scored: np.ndarray              # deformed rows with a prediction for them and their clean image
    flip: np.ndarray                # 1.0 where the deformed prediction differs from the clean one
    baseline: float                 # flip rate of an unrelated prediction: 1 − Σ q² (q: clean class shares)
    predicted: np.ndarray           # the deformed predictions


def flips(p: Paired, pred_clean: np.ndarray, pred_def: np.ndarray) -> Flips:
    """Flips of the deformed predictions against the clean ones. The baseline is the flip rate of
    predictions drawn independently with the clean predictions' class shares: an unrelated prediction."""
    scored = np.array([d is not None and pred_clean[r] is not None for d, r in zip(pred_def, p.row)], dtype=bool)
    flip = np.array([d != pred_clean[r] for d, r in zip(pred_def, p.row)], dtype=float)
    _, counts = np.unique([c for c in pred_clean if c is not None], return_counts=True)
    q = counts / counts.sum()
    return Flips(scored, flip, float(1.0 - (q ** 2).sum()), pred_def)


# ------------------------------------------------------------------ human ratings
def deformation_direction(p: Paired, mask: np.ndarray | None = None) -> np.ndarray:
    """Unit mean of (deformed − clean) over the deformed rows in `mask` (all when None)."""
    idx = np.arange(len(p.D)) if mask is None else np.flatnonzero(mask)
    diff = (p.D[idx] - p.X[p.row[idx]]).mean(axis=0)
    return diff / max(float(np.linalg.norm(diff)), 1e-12)


def rank_correlation(score: np.ndarray, rating: np.ndarray, permutations: int, n_boot: int, seed: int) -> dict:
    """Spearman rho of score and rating, a 95% row-bootstrap interval and a two-sided permutation p."""
    rs, rr = rankdata(score), rankdata(rating)
    rho = pearson(rs, rr)
    ci = bootstrap_ci(lambda i: pearson(rankdata(score[i]), rankdata(rating[i])), len(score), n_boot, seed)
    rng = np.random.default_rng(seed)
    null = np.array([pearson(rs, rng.permutation(rr)) for _ in range(permutations)])
    return {"value": rho, "ci": list(ci), "p_value": permutation_p(abs(rho), np.abs(null)), "n": len(score)}
