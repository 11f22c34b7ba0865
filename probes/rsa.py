"""`rsa`: representational similarity analysis: do paintings far apart in a label sit far apart in the model?

Two distances for every pair of rows (upper triangle): the embedding distance 1 - cosine, and the label
distance: 0/1 "different label" for a categorical column, |a - b| for a numeric one (`metric`: auto, which
picks by the column's values, categorical or absolute). The statistic `spearman_rho` is the Spearman
correlation between the two (Pearson correlation of average ranks, as scipy.stats.spearmanr).

* p-value: a Mantel test. Labels are permuted across rows `permutations` times; permuting rows permutes the
  label distance matrix's rows and columns together, so its ranks are permuted too and each null value is a
  single dot product with the pre-ranked matrix. One-sided (similar labels ↔ similar embeddings), with the +1
  correction (probes.stats.permutation_p). The null's 95th percentile is in `details["null_q95"]`.
* interval: bootstrap over rows. A resample with row counts w is the induced sub-matrix; its pairs are the
  original pairs with multiplicity w_i w_j (pairs of a row with its own copy are left out), so the Spearman
  correlation is recomputed exactly as a weighted one, with mid-ranks from weighted tie groups: no re-sorting,
  O(pairs) per resample. Above 500 rows the interval uses at most 200 resamples (`details["ci_resamples"]`).
* baseline: 0.0 (no association).

More than `max_rows` rows: a seeded subsample of `max_rows` rows (pairs grow as n^2). For categorical labels
`per_class` gives each class's mean embedding distance within the class and to the other classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows
from artlens.probes.result import Result
from artlens.probes.stats import bootstrap_ci, permutation_p
from artlens.probes.threads import single_threaded

NAME = "rsa"
METRICS = ("auto", "categorical", "absolute")
CI_CAP_ROWS, CI_CAP_RESAMPLES = 500, 200


@dataclass(frozen=True)
class Config(ProbeConfig):
    label: str = ""
    metric: str = "auto"
    permutations: int = 1000
    max_rows: int = 2000


def _check(cfg: Config) -> None:
    if not cfg.label:
        raise ConfigError("rsa probe needs label=<column>")
    if cfg.metric not in METRICS:
        raise ConfigError(f"rsa: unknown metric {cfg.metric!r}; metrics: {list(METRICS)}")
    if cfg.permutations < 1 or cfg.max_rows < 4:
        raise ConfigError("rsa: permutations must be >= 1 and max_rows >= 4")


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))


def label_codes(values: np.ndarray, metric: str) -> tuple[str, np.ndarray, np.ndarray | None, np.ndarray]:
    """(metric used, per-row class codes or floats, class names or None, rows to keep: finite values)."""
    numeric = all(_is_number(v) for v in values)
    if metric == "auto":
        metric = "absolute" if numeric else "categorical"
    if metric == "absolute":
        if not numeric:
            raise ConfigError("rsa: metric 'absolute' needs a numeric label column")
        v = values.astype(np.float64)
        return metric, v, None, np.isfinite(v)
    classes, codes = np.unique(values.astype(str), return_inverse=True)
    return metric, codes, classes, np.ones(len(values), dtype=bool)


def _mid_ranks(ties: np.ndarray, n_ties: int, w: np.ndarray) -> np.ndarray:
    """Average ranks of each pair in the multiset where pair p appears w[p] times (ties: tie-group codes,
    numbered in sorted order of the values)."""
    total = np.bincount(ties, weights=w, minlength=n_ties)
    return ((np.cumsum(total) - total) + (total + 1) / 2)[ties]


def weighted_spearman(d_ties, nd: int, l_ties, nl: int, w: np.ndarray) -> float:
    """Spearman correlation over pairs with integer multiplicities w (w = 1: the plain statistic). Sums go
    through einsum, not BLAS: single-threaded, so the same bits on any machine load."""
    rd, rl = _mid_ranks(d_ties, nd, w), _mid_ranks(l_ties, nl, w)
    W = w.sum()
    rd -= _dot(w, rd) / W
    rl -= _dot(w, rl) / W
    wd = w * rd
    den = np.sqrt(_dot(wd, rd) * _dot(w * rl, rl))
    return float(_dot(wd, rl) / den) if den > 0 else float("nan")


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.einsum("i,i->", a, b))


def mantel_null(rd: np.ndarray, rl: np.ndarray, pairs, n: int, permutations: int, seed: int) -> np.ndarray:
    """Spearman correlations after permuting labels across rows: the label rank matrix is permuted. Label
    ranks are held as float32 doubled mid-ranks (integers, exact below 2^24, i.e. up to ~4000 rows), which
    makes the per-permutation n x n gather 4-5x faster; sums are float64."""
    i0, i1 = pairs
    A, B = np.zeros((n, n)), np.zeros((n, n), dtype=np.float32)
    B[i0, i1] = 2 * rl                  # uncentred: A sums to ~0, so sum(A * B) is the centred product
    rd, rl = rd - rd.mean(), rl - rl.mean()
    den = np.sqrt(_dot(rd, rd) * _dot(rl, rl))
    A[i0, i1] = rd
    A, B = A + A.T, B + B.T
    rng = np.random.default_rng([seed, 1])
    null = np.empty(permutations)
    for b in range(permutations):
        p = rng.permutation(n)
        null[b] = np.einsum("ij,ij->", A, B.take(p, 0).take(p, 1)) / 4 / den
    return null


def class_distances(D: np.ndarray, codes: np.ndarray, classes: np.ndarray) -> dict:
    """Per class: mean embedding distance within the class and to rows of other classes, support."""
    Z = np.eye(len(classes))[codes]
    sums, size = Z.T @ D @ Z, Z.sum(axis=0)
    within = np.diag(sums) / np.maximum(size * (size - 1), 1)
    between = (sums.sum(axis=1) - np.diag(sums)) / np.maximum(size * (len(codes) - size), 1)
    return {str(c): {"within": float(within[j]) if size[j] > 1 else None, "between": float(between[j]),
                     "support": int(size[j])} for j, c in enumerate(classes)}


def _rows(s, cfg: Config):
    """Labelled rows (seeded subsample beyond max_rows); too few rows or a constant label raise."""
    rows = load_rows(s, cfg.table, [cfg.label], cfg.where, require=[cfg.label])
    metric, y, classes, keep = label_codes(rows.columns[cfg.label], cfg.metric)
    X, y = rows.X[keep], y[keep]
    info = {"rows_total": int(len(y)), "dropped_non_finite": int((~keep).sum())}
    if len(y) > cfg.max_rows:
        pick = np.sort(np.random.default_rng([cfg.seed, 0]).choice(len(y), cfg.max_rows, replace=False))
        X, y = X[pick], y[pick]
    if len(y) < 4:
        raise ProbeDataError(f"rsa: {len(y)} rows with a label {cfg.label!r}; need at least 4")
    distinct = len(np.unique(y))
    if distinct < 2:
        raise ProbeDataError(f"rsa: label {cfg.label!r} has {distinct} distinct value; nothing to correlate")
    return metric, X, y, classes, info


@single_threaded
def run(s, cfg: Config) -> Result:
    _check(cfg)
    metric, X, y, classes, info = _rows(s, cfg)
    n = len(y)
    Xn = X.astype(np.float64)
    Xn /= np.maximum(np.linalg.norm(Xn, axis=1, keepdims=True), 1e-12)
    D = 1.0 - Xn @ Xn.T
    np.fill_diagonal(D, 0.0)
    i0, i1 = np.triu_indices(n, 1)
    order = np.argsort(D[i0, i1], kind="stable")  # pairs in embedding-distance order: sequential memory access
    i0, i1 = i0[order], i1[order]
    label_dist = (y[i0] != y[i1]).astype(float) if metric == "categorical" else np.abs(y[i0] - y[i1])
    d_ties, l_ties = np.unique(D[i0, i1], return_inverse=True)[1], np.unique(label_dist, return_inverse=True)[1]
    nd, nl = int(d_ties.max()) + 1, int(l_ties.max()) + 1
    if nl < 2:
        raise ProbeDataError(f"rsa: label {cfg.label!r} gives every pair the same distance (every row its own "
                             "class?); nothing to correlate")
    ones = np.ones(len(i0))
    rho = weighted_spearman(d_ties, nd, l_ties, nl, ones)
    null = mantel_null(_mid_ranks(d_ties, nd, ones), _mid_ranks(l_ties, nl, ones), (i0, i1), n,
                       cfg.permutations, cfg.seed)
    n_boot = min(cfg.n_boot, CI_CAP_RESAMPLES) if n > CI_CAP_ROWS else cfg.n_boot

    def resampled(idx: np.ndarray) -> float:
        w = np.bincount(idx, minlength=n).astype(np.float64)
        return weighted_spearman(d_ties, nd, l_ties, nl, w[i0] * w[i1])

    result = Result(NAME, [cfg.table], cfg.as_dict(), n=n)
    result.add("spearman_rho", rho, bootstrap_ci(resampled, n, n_boot, cfg.seed), 0.0)
    if classes is not None:
        result.per_class = class_distances(D, y, classes)
    result.details.update(
        p_value=permutation_p(rho, null), permutations=cfg.permutations, null_q95=float(np.quantile(null, 0.95)),
        null_mean=float(null.mean()), metric=metric, pairs=int(len(i0)), ci_resamples=n_boot,
        subsampled=info["rows_total"] > n, **info)
    return result
