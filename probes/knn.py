"""`knn`: does the model put paintings of one label next to each other, and which label first?

For each label column, every row is a query against all other rows of the table (leave-one-out): its `k`
nearest neighbours by exact cosine similarity (an exhaustive FAISS inner-product search over the
L2-normalised rows for candidates, rescored in float64; neighbours tied in similarity go to the lower row:
probes/nearest.py) vote for a label, ties between labels going to the larger summed similarity,
then to the first label in sorted order. Two metrics per label, each with a 95% bootstrap interval over rows
(over whole groups when `group` is given):

* `<label>.knn_accuracy`: share of queries whose vote is their own label; baseline the majority class.
* `<label>.purity`: mean share of a query's neighbours that carry its label; baseline the purity expected
  of neighbours drawn at random (without replacement) from the eligible rows, which is
  sum_c n_c (n_c - 1) / (n (n - 1)) (squared class proportions, corrected for drawing without replacement).

With `group` (one or more columns, e.g. artist or prompt, or `group: [artist, dup_group]`), rows sharing a
value in ANY group column are one group (probes/groups.py `combine`; rows with a NULL in a group column are
left out). Neighbours of the query's own group are never counted, so near-duplicates (one prompt, twelve
generators) cannot inflate the scores, and the intervals resample whole groups; the random-neighbour
baseline is then the mean over queries of (n_c - n_c,g) / (n - n_g), the same quantity over the eligible
rows. `details["grouped_by"]` lists the group columns, `details["n_groups"]` counts the combined groups.

`details["lift"][label]` = purity / baseline purity (1 = no grouping by that label beyond chance) and
`details["ranking"]` orders the labels by lift: what the model groups paintings by first. Lift is bounded by
1 / baseline, so it favours labels with many small classes; `details["kappa"]` = (purity - baseline) /
(1 - baseline), the chance-corrected purity (0 = chance, 1 = every neighbour shares the label), and
`details["ranking_kappa"]` orders by it: read both when the labels differ much in their number of classes. Rows with no value
for a label, and classes with fewer than `min_count` rows, are left out for that label only (reported).

`rows` (kept by the store beside the result): one per scored query and label column: key, column (the label
column), label, predicted (the neighbours' vote), score (the share of its neighbours sharing its label),
correct.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows
from artlens.probes.groups import group_ids
from artlens.probes.nearest import outside_group
from artlens.probes.result import Result
from artlens.probes.stats import bootstrap_ci, drop_rare, majority_accuracy
from artlens.probes.threads import probe_threads

NAME = "knn"
BLOCK = 4096  # query rows per FAISS search call


@dataclass(frozen=True)
class Config(ProbeConfig):
    """Options:
        labels: the label columns, each scored on its own
        label: a single label, same as labels=(label,)
        k: neighbours that vote (cosine, leave-one-out)
        min_count: the fewest rows a class needs to be kept
        group: group columns (union: rows sharing a value in any are one group); a row's own group is never
            its neighbour, and the intervals resample whole groups
    """
    labels: tuple[str, ...] = ()
    label: str = ""                   # a single label, same as labels=(label,)
    k: int = 10
    min_count: int = 2
    group: tuple[str, ...] = ()       # group columns (union: rows sharing a value in any are one group)


def label_list(cfg: Config) -> list[str]:
    labels = list(dict.fromkeys([*cfg.labels, *([cfg.label] if cfg.label else [])]))
    if not labels:
        raise ConfigError("knn probe needs labels=<column>[,<column>...] (or label=<column>)")
    if cfg.k < 1:
        raise ConfigError(f"knn probe needs k >= 1, got {cfg.k}")
    return labels


def neighbours(X: np.ndarray, groups: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities (n, k) of each row's k nearest rows outside its own group, nearest
    first (ties to the lower index). Slots beyond a row's eligible neighbours hold -1 and -inf. Exact:
    a flat FAISS index gives the candidates, float64 rescoring the order (probes/nearest.py)."""
    return outside_group(X, groups, k, block=BLOCK)


def vote(y: np.ndarray, idx: np.ndarray, sim: np.ndarray, n_classes: int):
    """Predicted class, purity and has-neighbours mask per query (y: class codes 0..n_classes-1)."""
    n = len(y)
    valid = idx >= 0
    lab = np.where(valid, y[np.maximum(idx, 0)], 0)
    flat = (np.arange(n)[:, None] * n_classes + lab)[valid]
    counts = np.bincount(flat, minlength=n * n_classes).reshape(n, n_classes)
    sims = np.bincount(flat, weights=sim[valid], minlength=n * n_classes).reshape(n, n_classes)
    tied = counts == counts.max(axis=1, keepdims=True)
    pred = np.argmax(np.where(tied, sims, -np.inf), axis=1)
    n_valid = valid.sum(axis=1)
    purity = ((lab == y[:, None]) & valid).sum(axis=1) / np.maximum(n_valid, 1)
    return pred, purity, n_valid > 0


def random_purity(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per query, the expected share of same-class neighbours among random eligible (other-group) rows."""
    class_size = np.bincount(y)
    _, group_inv, group_size = np.unique(groups, return_inverse=True, return_counts=True)
    pair = y.astype(np.int64) * (group_inv.max() + 1) + group_inv
    _, pair_inv, pair_size = np.unique(pair, return_inverse=True, return_counts=True)
    same = class_size[y] - pair_size[pair_inv]
    eligible = len(y) - group_size[group_inv]
    return same / np.maximum(eligible, 1)


def score_label(result: Result, name: str, values: np.ndarray, X: np.ndarray, groups: np.ndarray | None,
                cfg: Config, keys: np.ndarray | None = None, rows_out: list | None = None) -> dict:
    """kNN accuracy and purity of one label; adds the metrics and per-class rows, returns its details. With
    `keys` (the rows' keys) and `rows_out`, appends the scored queries' rows (`label_rows`) to `rows_out`."""
    present = np.array([v is not None for v in values], dtype=bool)
    y_str = values[present].astype(str)
    keep, dropped = drop_rare(y_str, cfg.min_count)
    classes, y = np.unique(y_str[keep], return_inverse=True)
    if len(classes) < 2:
        raise ProbeDataError(f"label {name!r} has {len(classes)} class(es) with >= {cfg.min_count} rows; "
                             "need at least 2")
    if len(y) <= cfg.k:
        raise ProbeDataError(f"label {name!r}: {len(y)} rows, need more than k={cfg.k}")
    g = np.arange(len(y)) if groups is None else np.unique(groups[present][keep], return_inverse=True)[1]
    idx, sim = neighbours(X[present][keep], g, cfg.k)
    pred, purity, has = vote(y, idx, sim, len(classes))
    y, pred, purity, chance = y[has], pred[has], purity[has], random_purity(y, g)[has]
    if keys is not None and rows_out is not None:
        rows_out.append(label_rows(name, keys[present][keep][has], classes, y, pred, purity))
    correct = (pred == y).astype(float)
    cluster = None if groups is None else g[has]
    for metric, per_row, base in (("knn_accuracy", correct, majority_accuracy(y)),
                                  ("purity", purity, float(chance.mean()))):
        ci = bootstrap_ci(lambda i, v=per_row: float(v[i].mean()), len(y), cfg.n_boot, cfg.seed, cluster)
        result.add(f"{name}.{metric}", per_row.mean(), ci, base)
    result.per_class[name] = {
        str(c): {"purity": float(purity[y == j].mean()), "accuracy": float(correct[y == j].mean()),
                 "support": int((y == j).sum())} for j, c in enumerate(classes) if (y == j).any()}
    base_purity = float(chance.mean())
    return {"n": int(len(y)), "classes": int(len(classes)), "dropped_classes": dropped,
            "rows_without_label": int((~present).sum()), "queries_without_neighbours": int((~has).sum()),
            "lift": float(purity.mean() / base_purity) if base_purity > 0 else float("inf"),
            "kappa": float((purity.mean() - base_purity) / (1 - base_purity)) if base_purity < 1 else 0.0,
            "accuracy_lift": float(correct.mean() / majority_accuracy(y))}


def label_rows(name: str, keys: np.ndarray, classes: np.ndarray, y: np.ndarray, pred: np.ndarray,
               purity: np.ndarray) -> pa.Table:
    """The rows behind one label's scores: key, column (the label column), label, predicted (the vote),
    score (the share of the row's neighbours sharing its label), correct."""
    return pa.table({"key": pa.array(keys.astype(str)), "column": pa.array([name] * len(keys), pa.string()),
                     "label": pa.array(classes[y].astype(str)), "predicted": pa.array(classes[pred].astype(str)),
                     "score": pa.array(purity.astype(float)), "correct": pa.array(pred == y)})


@probe_threads
def run(s, cfg: Config) -> Result:
    labels = label_list(cfg)
    columns = labels + [c for c in cfg.group if c not in labels]
    rows = load_rows(s, cfg.table, columns, cfg.where, require=list(cfg.group) or None)
    groups = group_ids(rows.columns, cfg.group)
    result = Result(NAME, [cfg.table], cfg.as_dict(), n=len(rows.keys))
    scored: list = []
    per_label = {name: score_label(result, name, rows.columns[name], rows.X, groups, cfg, rows.keys, scored)
                 for name in labels}
    result.rows = pa.concat_tables(scored)
    lift = {name: d["lift"] for name, d in per_label.items()}
    kappa = {name: d["kappa"] for name, d in per_label.items()}
    result.details.update(
        labels=per_label, lift=lift, ranking=sorted(labels, key=lambda name: (-lift[name], name)),
        kappa=kappa, ranking_kappa=sorted(labels, key=lambda name: (-kappa[name], name)), k=cfg.k,
        grouped_by=list(cfg.group), n_groups=None if groups is None else int(len(np.unique(groups))))
    return result
