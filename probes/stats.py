"""Intervals and baselines shared by the probes. Every resampling is seeded."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from artlens.probes.config import MIN_N_BOOT, check_n_boot  # noqa: F401 - MIN_N_BOOT re-exported


def bootstrap_ci(metric: Callable[[np.ndarray], float], n: int, n_boot: int = 1000, seed: int = 0,
                 groups: Sequence | None = None, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile interval of `metric(indices)` over resamples of rows, or of whole groups when given
    (a cluster bootstrap: rows of one artist or generator move together)."""
    check_n_boot(n_boot)
    rng = np.random.default_rng(seed)
    if groups is None:
        samples = (rng.integers(0, n, n) for _ in range(n_boot))
    else:
        groups = np.asarray(groups)
        members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
        samples = (np.concatenate([members[i] for i in rng.integers(0, len(members), len(members))])
                   for _ in range(n_boot))
    values = np.array([metric(idx) for idx in samples], dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    return float(np.quantile(values, alpha / 2)), float(np.quantile(values, 1 - alpha / 2))


def majority_accuracy(y: np.ndarray) -> float:
    _, counts = np.unique(y, return_counts=True)
    return float(counts.max() / counts.sum())


def drop_rare(y: np.ndarray, min_count: int) -> tuple[np.ndarray, dict[str, int]]:
    """Mask of rows whose class has at least `min_count` members, and the dropped classes with counts."""
    labels, counts = np.unique(y, return_counts=True)
    rare = {str(lab): int(c) for lab, c in zip(labels, counts) if c < min_count}
    return ~np.isin(y, list(rare)), rare


def permutation_p(statistic: float, null: np.ndarray) -> float:
    """One-sided p-value with the +1 correction (never 0)."""
    return float((np.sum(null >= statistic) + 1) / (len(null) + 1))
