"""`rsa`: representational similarity analysis: do paintings far apart in a label sit far apart in the model?

Two distances for every pair of rows (upper triangle): the embedding distance 1 - cosine, and the label
distance: 0/1 "different label" for a categorical column, |a - b| for a numeric one (`metric`: auto, which
picks by the column's values, categorical or absolute). The statistic `spearman_rho` is the Spearman
correlation between the two (Pearson correlation of average ranks, as scipy.stats.spearmanr).

`group` (one or more columns, e.g. prompt: rows sharing a value in ANY of them are one group, probes/groups.py
`combine`; rows with a NULL in a group column are left out): near-duplicates of one group are not
independent pairs. The statistic, the null and the interval then use only the pairs of rows from different
groups (`details["pairs"]`; `within_group_pairs` left out), and the null and the interval move whole groups:

* p-value: a Mantel test, one-sided (similar labels ↔ similar embeddings), `permutations` draws, with the +1
  correction (probes.stats.permutation_p); the null's 95th percentile is in `details["null_q95"]`. The
  permutation respects the design (`details["permutation"]`):
  - "rows" (no `group`): labels permuted across rows; permuting rows permutes the label distance matrix's
    rows and columns together, so its ranks are permuted too and each null value is a single dot product
    with the pre-ranked matrix.
  - "group labels" (the label constant within every group): the group-level labels are permuted among the
    groups, whatever their sizes. A pair's label distance depends only on its two groups, so each null value
    is computed on the G x G group pairs (weights n_a n_b), exactly the Spearman correlation of the row pairs
    under the permuted labels.
  - "equal-size blocks" (the label varies within a group, even a single one:
    `details["groups_with_several_labels"]`): whole groups of equal size are exchanged, rows keeping their
    order within a group; a group whose size no other group has stays in place.
    `details["exchangeable_groups"]` counts the groups that can move; if none can, the p-value is NaN and
    `details["note"]` says why.
* interval: bootstrap over rows, or over whole groups. A resample with row counts w (with groups: the
  number of times the row's group was drawn) is the induced sub-matrix; its pairs are the used pairs with
  multiplicity w_i w_j (pairs of a row with its own copy, or with a copy of a group-mate, are left out), so
  the Spearman correlation is recomputed exactly as a weighted one, with mid-ranks from weighted tie groups:
  no re-sorting, O(pairs) per resample. Above 500 rows the interval uses at most 200 resamples
  (`details["ci_resamples"]`).
* baseline: 0.0 (no association).

More than `max_rows` rows: a seeded subsample of `max_rows` rows (pairs grow as n^2). For categorical labels
`per_class` gives each class's mean embedding distance within the class and to the other classes (over the
used pairs: with `group`, between rows of different groups).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows
from artlens.probes.groups import group_ids
from artlens.probes.result import Result
from artlens.probes.stats import bootstrap_ci, permutation_p
from artlens.probes.threads import probe_threads

NAME = "rsa"
METRICS = ("auto", "categorical", "absolute")
CI_CAP_ROWS, CI_CAP_RESAMPLES = 500, 200


@dataclass(frozen=True)
class Config(ProbeConfig):
    """Options:
        label: the column whose distances are compared with the embedding distances
        metric: the label distance: auto (by the column's values), categorical (0/1) or absolute (|a - b|)
        permutations: Mantel test permutations of the p-value
        max_rows: rows sampled at most (pairs grow with the square of rows)
        group: group columns: within-group pairs left out, whole groups permuted and resampled
    """
    label: str = ""
    metric: str = "auto"
    permutations: int = 1000
    max_rows: int = 2000
    group: tuple[str, ...] = ()       # group columns: within-group pairs left out, whole groups permuted


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


def mantel_null(rd: np.ndarray, rl: np.ndarray, pairs, n: int, permutations: int, seed: int,
                blocks: list[np.ndarray] | None = None) -> np.ndarray:
    """Spearman correlations after permuting labels across rows (or, with `blocks`, exchanging whole
    equal-size groups: `block_permutation`): the label rank matrix is permuted. A row permutation that maps
    groups onto groups maps the used (between-group) pairs onto used pairs, so the ranks stay valid. Label
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
        p = rng.permutation(n) if blocks is None else block_permutation(blocks, n, rng)
        null[b] = np.einsum("ij,ij->", A, B.take(p, 0).take(p, 1)) / 4 / den
    return null


def exchangeable_blocks(groups: np.ndarray) -> list[np.ndarray]:
    """Per group size shared by two or more groups, a (groups, size) array of their rows, each group's rows
    in their order: the groups a block permutation may exchange."""
    _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    blocks = []
    for size in np.unique(sizes):
        members = np.flatnonzero(sizes == size)
        if len(members) > 1:
            blocks.append(np.stack([np.flatnonzero(inverse == g) for g in members]))
    return blocks


def block_permutation(blocks: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """A row permutation that exchanges whole groups of equal size (`exchangeable_blocks`): the j-th row of
    a group takes the place of the j-th row of the group it replaces; other rows stay. Indexing labels with
    it (`y[p]`) gives each group the labels of one other group of its size, in their order."""
    p = np.arange(n)
    for rows in blocks:
        p[rows.ravel()] = rows[rng.permutation(len(rows))].ravel()
    return p


def group_label_null(rd: np.ndarray, pairs, groups: np.ndarray, y: np.ndarray, metric: str, permutations: int,
                     seed: int) -> np.ndarray:
    """Spearman correlations after permuting the group-level labels among groups (`y` constant within each
    group; `groups` 0..G-1; `pairs` between-group row pairs, `rd` their embedding mid-ranks). A pair's label
    distance depends only on its two groups, so the label ranks are weighted mid-ranks over the G(G-1)/2 group
    pairs, with weights n_a n_b; the embedding side enters as each group pair's sum of centred ranks."""
    G = int(groups.max()) + 1
    first = np.unique(groups, return_index=True)[1]
    yg = y[first]
    ga, gb = groups[pairs[0]], groups[pairs[1]]
    lo, hi = np.minimum(ga, gb), np.maximum(ga, gb)
    a, b = np.triu_indices(G, 1)
    size = np.bincount(groups, minlength=G).astype(np.float64)
    weight = size[a] * size[b]
    rd = rd - rd.mean()
    S = np.bincount(lo * G + hi, weights=rd, minlength=G * G).reshape(G, G)[a, b]
    dist = np.abs(yg[:, None] - yg[None, :]) if metric == "absolute" else (yg[:, None] != yg[None, :]).astype(float)
    values, codes = np.unique(dist[a, b], return_inverse=True)
    code = np.zeros((G, G), dtype=np.int64)
    code[a, b] = codes
    code = code + code.T
    n_codes, W, sd = len(values), weight.sum(), _dot(rd, rd)
    rng = np.random.default_rng([seed, 1])
    null = np.empty(permutations)
    for k in range(permutations):
        q = rng.permutation(G)
        rl = _mid_ranks(code[q[a], q[b]], n_codes, weight)
        rl -= _dot(weight, rl) / W
        den = np.sqrt(sd * _dot(weight * rl, rl))
        null[k] = _dot(S, rl) / den if den > 0 else np.nan
    return null


def groups_with_several_labels(groups: np.ndarray, y: np.ndarray) -> int:
    """How many groups carry more than one label value (0: the label is constant within every group)."""
    values = np.unique(np.c_[groups, y], axis=0)      # (group, label) combinations present
    return int((np.bincount(values[:, 0].astype(np.int64)) > 1).sum())


def class_distances(D: np.ndarray, codes: np.ndarray, classes: np.ndarray, used: np.ndarray | None = None) -> dict:
    """Per class: mean embedding distance within the class and to rows of other classes, support; over the
    pairs `used` marks (n x n, symmetric; None: every pair of distinct rows)."""
    Z = np.eye(len(classes))[codes]
    size = Z.sum(axis=0)
    if used is None:
        sums, within_n = Z.T @ D @ Z, size * (size - 1)
        between_n = size * (len(codes) - size)
    else:
        sums, counts = Z.T @ (D * used) @ Z, Z.T @ used @ Z
        within_n, between_n = np.diag(counts), counts.sum(axis=1) - np.diag(counts)
    within = np.diag(sums) / np.maximum(within_n, 1)
    between = (sums.sum(axis=1) - np.diag(sums)) / np.maximum(between_n, 1)
    return {str(c): {"within": float(within[j]) if within_n[j] > 0 else None, "between": float(between[j]),
                     "support": int(size[j])} for j, c in enumerate(classes)}


def _rows(s, cfg: Config):
    """Labelled rows (seeded subsample beyond max_rows) and their groups (0..G-1, or None); too few rows or a
    constant label raise."""
    columns = list(dict.fromkeys([cfg.label, *cfg.group]))
    rows = load_rows(s, cfg.table, columns, cfg.where, require=columns)
    metric, y, classes, keep = label_codes(rows.columns[cfg.label], cfg.metric)
    X, y = rows.X[keep], y[keep]
    groups = group_ids(rows.columns, cfg.group)
    groups = None if groups is None else groups[keep]
    info = {"rows_total": int(len(y)), "dropped_non_finite": int((~keep).sum())}
    if len(y) > cfg.max_rows:
        pick = np.sort(np.random.default_rng([cfg.seed, 0]).choice(len(y), cfg.max_rows, replace=False))
        X, y = X[pick], y[pick]
        groups = None if groups is None else groups[pick]
    if len(y) < 4:
        raise ProbeDataError(f"rsa: {len(y)} rows with a label {cfg.label!r}; need at least 4")
    distinct = len(np.unique(y))
    if distinct < 2:
        raise ProbeDataError(f"rsa: label {cfg.label!r} has {distinct} distinct value; nothing to correlate")
    if groups is not None:
        groups = np.unique(groups, return_inverse=True)[1]
        if groups.max() < 1:
            raise ProbeDataError(f"rsa: every row is in one group of {list(cfg.group)}; no pair of rows from "
                                 "different groups")
    return metric, X, y, classes, groups, info


def _null(rd, rl, pairs, n: int, y, groups, metric: str, cfg: Config) -> tuple[np.ndarray, dict]:
    """The Mantel null of the design and how it was drawn (details)."""
    if groups is None:
        return mantel_null(rd, rl, pairs, n, cfg.permutations, cfg.seed), {"permutation": "rows"}
    mixed = groups_with_several_labels(groups, y)
    if not mixed:
        null = group_label_null(rd, pairs, groups, y, metric, cfg.permutations, cfg.seed)
        return null, {"permutation": "group labels", "exchangeable_groups": int(groups.max()) + 1,
                      "groups_with_several_labels": 0}
    blocks = exchangeable_blocks(groups)
    info = {"permutation": "equal-size blocks", "exchangeable_groups": int(sum(len(b) for b in blocks)),
            "groups_with_several_labels": mixed}
    if not blocks:
        info["note"] = ("the label varies within groups and no two groups have the same size, so no "
                        "permutation of whole groups exists: no p-value")
        return np.full(cfg.permutations, np.nan), info
    return mantel_null(rd, rl, pairs, n, cfg.permutations, cfg.seed, blocks), info


@probe_threads
def run(s, cfg: Config) -> Result:
    _check(cfg)
    metric, X, y, classes, groups, info = _rows(s, cfg)
    n = len(y)
    Xn = X.astype(np.float64)
    Xn /= np.maximum(np.linalg.norm(Xn, axis=1, keepdims=True), 1e-12)
    D = 1.0 - Xn @ Xn.T
    np.fill_diagonal(D, 0.0)
    i0, i1 = np.triu_indices(n, 1)
    within = 0
    if groups is not None:                        # only pairs of rows from different groups
        between = groups[i0] != groups[i1]
        within = int((~between).sum())
        i0, i1 = i0[between], i1[between]
    order = np.argsort(D[i0, i1], kind="stable")  # pairs in embedding-distance order: sequential memory access
    i0, i1 = i0[order], i1[order]
    label_dist = (y[i0] != y[i1]).astype(float) if metric == "categorical" else np.abs(y[i0] - y[i1])
    d_ties, l_ties = np.unique(D[i0, i1], return_inverse=True)[1], np.unique(label_dist, return_inverse=True)[1]
    nd, nl = int(d_ties.max()) + 1, int(l_ties.max()) + 1
    if nl < 2:
        raise ProbeDataError(f"rsa: label {cfg.label!r} gives every pair the same distance (every row its own "
                             "class?" + (", or every group?" if groups is not None else "") + "); nothing to "
                             "correlate")
    ones = np.ones(len(i0))
    rho = weighted_spearman(d_ties, nd, l_ties, nl, ones)
    null, scheme = _null(_mid_ranks(d_ties, nd, ones), _mid_ranks(l_ties, nl, ones), (i0, i1), n, y, groups,
                         metric, cfg)
    n_boot = min(cfg.n_boot, CI_CAP_RESAMPLES) if n > CI_CAP_ROWS else cfg.n_boot

    def resampled(idx: np.ndarray) -> float:
        w = np.bincount(idx, minlength=n).astype(np.float64)
        return weighted_spearman(d_ties, nd, l_ties, nl, w[i0] * w[i1])

    result = Result(NAME, [cfg.table], cfg.as_dict(), n=n)
    result.add("spearman_rho", rho, bootstrap_ci(resampled, n, n_boot, cfg.seed, groups), 0.0)
    if classes is not None:
        used = None if groups is None else (groups[:, None] != groups[None, :]).astype(np.float64)
        result.per_class = class_distances(D, y, classes, used)
    drawn = np.isfinite(null).all()
    result.details.update(
        p_value=permutation_p(rho, null) if drawn else float("nan"), permutations=cfg.permutations,
        null_q95=float(np.quantile(null, 0.95)) if drawn else float("nan"),
        null_mean=float(null.mean()) if drawn else float("nan"), metric=metric, pairs=int(len(i0)),
        within_group_pairs=within, grouped_by=list(cfg.group),
        n_groups=None if groups is None else int(groups.max()) + 1, **scheme, ci_resamples=n_boot,
        subsampled=info["rows_total"] > n, **info)
    return result
