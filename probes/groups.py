"""Split groups, one meaning in every probe: `group` names one or more columns (`--group artist --group
dup_group`), and rows that share a value in ANY of them are one group (the connected components of "shares
a value"), so they never fall on both sides of a split and a cluster bootstrap resamples them together.
`combine` lets a NULL link nothing; the probes leave out rows with a NULL in any of their group columns
(`load_rows(..., require=list(cfg.group))`), as they always did for one column.

Near-duplicates: `artlens dedup` gives a table the column `dup_group` (DUP_COLUMN). Where a table has it,
every probe that splits rows counts the near-duplicate pairs whose two rows fall in different folds
(`straddling_pairs`) and reports the count in `details["straddling_duplicates"]`; zero once `dup_group` is
one of the group columns.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DUP_COLUMN = "dup_group"


def as_columns(value) -> tuple[str, ...]:
    """A config's `group` (or `nuisance`) as a tuple of column names: None / "" → (), "a" → ("a",)."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def combine(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Group ids (0..G-1, int64, numbered by first appearance) of rows linked by sharing a non-NULL value in
    any of `columns` (each an array of one value per row)."""
    if not columns:
        raise ValueError("combine needs at least one group column")
    n = len(columns[0])
    parent = np.arange(n)
    for values in columns:
        first: dict = {}
        for i, v in enumerate(values):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                continue
            key = str(v)
            j = first.setdefault(key, i)
            if j != i:
                a, b = _find(parent, i), _find(parent, j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    roots = np.array([_find(parent, i) for i in range(n)], dtype=np.int64)
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)  # a root is its group's first row


def group_ids(columns: dict[str, np.ndarray], names: Sequence[str]) -> np.ndarray | None:
    """Each row's group for `names` (columns of `columns`), as text: the combined groups of `combine`, each
    named by the smallest value (as text) of the first group column among its rows. For one column these are
    the column's own values, so a one-column group sorts, splits and resamples exactly as a plain column
    does. None when no group column is asked for."""
    names = as_columns(names)
    if not names:
        return None
    ids = combine([columns[name] for name in names])
    # a NULL never names a group (it sorts after every value, and a group of NULLs only is named by its id)
    first = np.asarray([f"\uffff{g}" if v is None else str(v) for v, g in zip(columns[names[0]], ids)])
    order = np.argsort(first, kind="stable")
    _, at = np.unique(ids[order], return_index=True)   # per group, where its smallest name sits in `order`
    return first[order][at][ids]


def fold_of_rows(n: int, splits: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """For out-of-fold splits (each row tested once), the fold that tests each row (-1: never tested)."""
    fold = np.full(n, -1, dtype=np.int64)
    for f, (_, test) in enumerate(splits):
        fold[test] = f
    return fold


def straddling_pairs(dup_groups: np.ndarray, fold: np.ndarray) -> int:
    """Near-duplicate pairs (rows sharing a non-NULL `dup_groups` value) whose rows are tested in different
    folds: each such pair put one copy in the training side while the other was tested."""
    total = 0
    values = np.asarray([None if v is None else str(v) for v in dup_groups], dtype=object)
    present = np.asarray([v is not None for v in values])
    for g in np.unique(values[present].astype(str)):
        folds = fold[present][values[present].astype(str) == g]
        folds = folds[folds >= 0]
        m = len(folds)
        _, per_fold = np.unique(folds, return_counts=True)
        total += m * (m - 1) // 2 - int((per_fold * (per_fold - 1) // 2).sum())
    return int(total)


def duplicate_report(columns: dict[str, np.ndarray], splits, n: int) -> int | None:
    """`details["straddling_duplicates"]` for rows that carry DUP_COLUMN (load it with
    `load_rows(..., optional=[DUP_COLUMN])`); None when the table has no such column."""
    if DUP_COLUMN not in columns:
        return None
    return straddling_pairs(columns[DUP_COLUMN], fold_of_rows(n, splits))
