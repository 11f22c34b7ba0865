"""Do the probes' "95%" intervals cover 95% of the time? Simulated data sets of known truth, small samples,
intervals from `artlens.probes.stats.bootstrap_ci` on the statistics the probes compute (a mean of per-row hits
as in knn/zero-shot, `regression.pearson`, `separability.auc`), and a clustered design in which only the
group (cluster) bootstrap keeps its coverage.

Tolerance (SEEDS = 200 data sets per design): the number of intervals that cover the truth is Binomial(200, p).
The test accepts a coverage in [0.90, 0.99], i.e. 180..198 of 200. If the true coverage is exactly 0.95 the
chance of falling outside is P(X <= 179) + P(X >= 199) = 0.0012 + 0.0004, about 0.16% (scipy.stats.binom); at a
true 0.93 (the small-sample under-coverage a percentile bootstrap may have) it is about 4%, at 0.92 about 12%.
The seeds are fixed, so each run is deterministic; the numbers say how unlikely a correct bootstrap is to fail
on another set of seeds. Under-coverage is asserted as at most 0.85 (170 of 200): at a true 0.95 that has
probability 9e-8, and the row bootstrap of the clustered design covers about 0.69 (measured: 0.655 here).
Measured on these seeds: accuracy 0.975, Pearson r 0.940, AUC 0.945; clustered: group bootstrap 0.940, row
bootstrap 0.655 (over 1000 data sets: 0.952, 0.941, 0.943; group bootstrap 0.946).

Speed: `bootstrap_ci` calls its metric once per resample in Python. Every data set of one design has the same
layout (n, groups) and is bootstrapped with the same seed, so `bootstrap_ci` draws the same resamples for each;
`Batched` computes a statistic on one resample for all 200 data sets at once (numpy) and hands `bootstrap_ci`,
per data set, an ordinary `metric(indices)` that looks the value up by the resample's indices (computing it on
a resample it has not seen). The batched statistics are checked against the probes' own functions.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm, rankdata

from artlens.probes.regression import pearson
from artlens.probes.separability import auc
from artlens.probes.stats import bootstrap_ci

SEEDS = 200      # simulated data sets per design
N_BOOT = 1000    # the probes' default number of resamples
BOOT_SEED = 0    # the probes' default seed
COVERAGE = (0.90, 0.99)  # acceptance band for a nominal 95%: see the module docstring
UNDER = 0.85     # at most this: an interval that does not mean 95%


class Batched:
    """`fn(indices) -> array (SEEDS,)`: a statistic of every data set on one resample, memoised by the
    resample's indices; `metric(s)` is data set s's `metric(indices) -> float` for `bootstrap_ci`."""

    def __init__(self, fn):
        self.fn, self.cache = fn, {}

    def values(self, idx: np.ndarray) -> list[float]:
        key = idx.tobytes()
        got = self.cache.get(key)
        if got is None:
            got = self.cache[key] = np.asarray(self.fn(idx), dtype=float).tolist()
        return got

    def metric(self, s: int):
        return lambda idx: self.values(idx)[s]


def intervals(batched: Batched, n: int, groups=None, count: int = SEEDS) -> np.ndarray:
    """bootstrap_ci's (lo, hi) for each of the first `count` data sets, shape (count, 2)."""
    return np.array([bootstrap_ci(batched.metric(s), n, N_BOOT, BOOT_SEED, groups) for s in range(count)])


def coverage(ci: np.ndarray, truth: float) -> float:
    return float(np.mean((ci[:, 0] <= truth) & (truth <= ci[:, 1])))


def rngs(design: int):
    return [np.random.default_rng([design, s]) for s in range(SEEDS)]


# ------------------------------------------------------------------------- designs with independent rows
# Each returns (n, truth, batched statistic, the probe's scalar statistic of data set s on indices).

def accuracy_design():
    """Per-row hits of a classifier with accuracy 0.8, 60 rows: the knn/zero-shot `hits[i].mean()`."""
    n, p = 60, 0.8
    hits = np.stack([(r.random(n) < p).astype(float) for r in rngs(1)])
    return n, p, Batched(lambda i: hits[:, i].mean(axis=1)), lambda s, i: float(hits[s, i].mean())


def pearson_design():
    """Pearson r of a bivariate normal with rho = 0.5, 50 rows: `regression.pearson`."""
    n, rho = 50, 0.5
    z = np.stack([r.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n) for r in rngs(2)])
    a, b = z[..., 0], z[..., 1]

    def batch(i):
        x, y = a[:, i] - a[:, i].mean(1, keepdims=True), b[:, i] - b[:, i].mean(1, keepdims=True)
        return (x * y).sum(1) / np.sqrt((x * x).sum(1) * (y * y).sum(1))

    return n, rho, Batched(batch), lambda s, i: pearson(a[s, i], b[s, i])


def auc_design():
    """ROC AUC of a score shifted by 1 SD between two classes of 40 rows: `separability.auc`; the true AUC of
    N(1, 1) against N(0, 1) is Phi(1 / sqrt 2) = 0.760."""
    n, shift = 80, 1.0
    y = np.arange(n) % 2
    score = np.stack([r.normal(size=n) + shift * y for r in rngs(3)])

    def batch(i):
        pos = y[i] == 1
        n1 = int(pos.sum())
        n0 = len(i) - n1
        if n1 == 0 or n0 == 0:
            return np.full(SEEDS, np.nan)
        return (rankdata(score[:, i], axis=1)[:, pos].sum(1) - n1 * (n1 + 1) / 2) / (n1 * n0)

    return n, float(norm.cdf(shift / np.sqrt(2))), Batched(batch), lambda s, i: auc(y[i], score[s, i])


def check_batched(batched: Batched, scalar, n: int, groups=None) -> None:
    """The batched statistic is the probe's statistic: on the resamples bootstrap_ci draws, for a few data sets."""
    drawn = []
    bootstrap_ci(lambda idx: drawn.append(idx) or 0.0, n, 40, BOOT_SEED, groups)
    for idx in drawn[:10] + [np.arange(n)]:
        got = batched.values(idx)
        for s in (0, 1, SEEDS - 1):
            assert np.isclose(got[s], scalar(s, idx), rtol=1e-9, atol=1e-12), (s, got[s], scalar(s, idx))


@pytest.mark.parametrize("design", [accuracy_design, pearson_design,
                                    pytest.param(auc_design, marks=pytest.mark.slow)],  # AUC ranks: 4-6 s
                         ids=lambda d: d.__name__)
def test_row_bootstrap_intervals_cover_95_percent_of_the_time(design):
    n, truth, batched, scalar = design()
    check_batched(batched, scalar, n)
    ci = intervals(batched, n)
    assert np.all(ci[:, 0] < ci[:, 1]), "a 95% interval of a non-degenerate statistic has width"
    got = coverage(ci, truth)
    assert COVERAGE[0] <= got <= COVERAGE[1], f"{design.__name__}: coverage {got:.3f} of {SEEDS} intervals"


# ------------------------------------------------------------------------------------- a clustered design

G, M = 60, 4                 # 60 groups (artists, generators) of 4 rows
SD_GROUP, SD_ROW = 1.0, 0.3  # intra-class correlation 1 / 1.09 = 0.92: rows of one group nearly agree
MU = 2.0


def clustered_design():
    """y = MU + u[group] + e: the mean's standard error is driven by the 60 group effects, not by 240 rows
    (design effect 1 + (M - 1) * 0.92 = 3.75, so a row bootstrap is about 1.9 times too narrow; with 60
    groups the percentile group bootstrap covers about 0.946, measured over 1000 data sets)."""
    groups = np.repeat(np.arange(G), M)
    y = np.stack([MU + r.normal(0, SD_GROUP, G)[groups] + r.normal(0, SD_ROW, G * M) for r in rngs(4)])
    return groups, Batched(lambda i: y[:, i].mean(axis=1)), lambda s, i: float(y[s, i].mean())


@pytest.mark.slow  # 400 bootstraps of 1000 resamples, 200 of them of groups: 10-15 s on 2 shared cores
def test_group_bootstrap_is_wider_than_the_row_bootstrap_and_only_it_covers_95_percent():
    groups, batched, scalar = clustered_design()
    n = len(groups)
    check_batched(batched, scalar, n, groups)
    by_group = intervals(batched, n, groups)
    by_row = intervals(batched, n)
    ratio = (by_group[:, 1] - by_group[:, 0]) / (by_row[:, 1] - by_row[:, 0])
    assert np.median(ratio) > 1.5 and np.mean(ratio > 1) >= 0.95, \
        f"group intervals should be about 1.9 times wider: median ratio {np.median(ratio):.2f}"
    group_cov, row_cov = coverage(by_group, MU), coverage(by_row, MU)
    assert COVERAGE[0] <= group_cov <= COVERAGE[1], f"group bootstrap coverage {group_cov:.3f}"
    assert row_cov <= UNDER, f"row bootstrap of clustered rows should under-cover, got {row_cov:.3f}"


def test_group_bootstrap_of_independent_rows_matches_the_row_bootstrap():
    """Without within-group correlation the two bootstraps agree (groups are not a free widening); the median
    width of 50 intervals is enough to tell a ratio of 1 from 1.9."""
    groups = np.repeat(np.arange(G), M)
    y = np.stack([r.normal(size=G * M) for r in rngs(5)])
    batched = Batched(lambda i: y[:, i].mean(axis=1))
    n = len(groups)
    widths = [np.median(np.diff(intervals(batched, n, g, count=50), axis=1)) for g in (groups, None)]
    assert 0.85 < widths[0] / widths[1] < 1.15, widths
