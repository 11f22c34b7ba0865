"""Shared pieces of the classification probes: out-of-fold splits that respect groups, and the standard
metric block (accuracy, balanced accuracy, macro-F1 with bootstrap CIs and baselines, per-class, confusion)."""
from __future__ import annotations

import json

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score
from sklearn.metrics import precision_recall_fscore_support
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from artlens.probes.result import Result
from artlens.probes.stats import bootstrap_ci, majority_accuracy


def outer_splits(y: np.ndarray, groups: np.ndarray | None, folds: int, seed: int) -> list:
    """Stratified folds; with groups, no group spans train and test (StratifiedGroupKFold)."""
    if groups is None:
        return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))
    return list(StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y, groups))


def classification_metrics(result: Result, y: np.ndarray, pred: np.ndarray, groups: np.ndarray | None,
                           n_boot: int, seed: int) -> None:
    """Headline metrics of out-of-fold predictions, with 95% bootstrap intervals (over groups when given)."""
    labels = np.unique(y)
    baselines = {"accuracy": majority_accuracy(y), "balanced_accuracy": 1.0 / len(labels),
                 "macro_f1": label_blind_macro_f1(y, labels)}
    # sklearn's accuracy, balanced accuracy and macro-F1 (over y's labels, zero_division=0), computed from
    # integer codes: the same values, without sklearn's label checks in each of the n_boot resamples (which
    # took 50 of zero-shot's 55 s at 20,000 rows)
    (yc, pc), k, codes = _codes(y, pred)
    for name, baseline in baselines.items():
        def fn(i, name=name):
            return fast_scores(yc[i], pc[i], k, codes)[name]
        result.add(name, fn(np.arange(len(y))), bootstrap_ci(fn, len(y), n_boot, seed, groups), baseline)
    p, r, f, support = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    result.per_class = {str(c): {"precision": p[i], "recall": r[i], "f1": f[i], "support": int(support[i])}
                        for i, c in enumerate(labels)}
    result.details["confusion"] = {"labels": [str(c) for c in labels],
                                   "matrix": confusion_matrix(y, pred, labels=labels).tolist()}


def label_blind_macro_f1(y: np.ndarray, labels: np.ndarray) -> float:
    """The macro-F1 a classifier blind to the embedding reaches: the better of always predicting the majority
    class and guessing each class at its own rate. Guessing at the class rates p_c gives each class precision
    and recall p_c in expectation, so F1 p_c and macro-F1 1/k, which is above the majority vote's (its F1 is
    0 for every class but one); a model trained on noise spreads its predictions the same way and scores
    about 1/k (tests/probes/test_probes_known_answers.py), so the majority vote alone set the bar too low."""
    values, counts = np.unique(y, return_counts=True)
    majority = np.full(len(y), values[np.argmax(counts)], dtype=object)
    return max(float(f1_score(y, majority, average="macro", labels=labels, zero_division=0)), 1.0 / len(labels))


# ------------------------------------------------------------------------------ nuisance baselines
#: The headline classification metrics a nuisance model and a transfer are scored on.
HEADLINE = ("accuracy", "balanced_accuracy", "macro_f1")


def nuisance_keys(columns: dict[str, np.ndarray], names) -> np.ndarray:
    """One key per row naming its combination of the nuisance columns' values (as strings; NULL is a value of
    its own), comparable across tables (a transfer applies a training table's model to a test table)."""
    values = [[None if v is None else str(v) for v in columns[c]] for c in names]
    return np.array([json.dumps(list(combination)) for combination in zip(*values)], dtype=object)


def key_codes(keys: np.ndarray) -> np.ndarray:
    """Combination ids 0..K-1 of nuisance keys (for within-combination statistics)."""
    return np.unique(keys.astype(str), return_inverse=True)[1].astype(np.int64)


def majority_by_key(train_keys: np.ndarray, train_y: np.ndarray, test_keys: np.ndarray):
    """The nuisance classifier: each combination's majority class in the training rows (ties → the first in
    sorted order); a combination unseen in training gets the training rows' majority. Returns the predictions
    and a mask of the test rows whose combination was unseen."""
    labels, y_codes = np.unique(train_y.astype(str), return_inverse=True)
    overall = labels[np.argmax(np.bincount(y_codes, minlength=len(labels)))]
    counts: dict = {}
    for key, c in zip(train_keys, y_codes):
        counts.setdefault(key, np.zeros(len(labels), dtype=np.int64))[c] += 1
    best = {key: labels[np.argmax(row)] for key, row in counts.items()}
    unseen = np.array([key not in best for key in test_keys], dtype=bool)
    pred = np.array([best.get(key, overall) for key in test_keys], dtype=object).astype(str)
    return pred, unseen


def out_of_fold_by_key(keys: np.ndarray, y: np.ndarray, splits, model) -> tuple[np.ndarray, int]:
    """Out-of-fold predictions of a nuisance model (`majority_by_key` or `mean_by_key`) fit on each training
    fold alone, and the number of test rows whose combination their training fold never saw."""
    pred = np.empty(len(y), dtype=object if model is majority_by_key else float)
    unseen = 0
    for train, test in splits:
        pred[test], missing = model(keys[train], y[train], keys[test])
        unseen += int(missing.sum())
    return (pred.astype(str) if model is majority_by_key else pred.astype(float)), unseen


def _codes(y: np.ndarray, *preds: np.ndarray):
    """Integer codes of y and predictions over their union of labels, and the codes of y's own labels."""
    union, inverse = np.unique(np.concatenate([y, *preds]).astype(str), return_inverse=True)
    parts = np.split(inverse, np.cumsum([len(y)] * len(preds)))
    return parts, len(union), np.searchsorted(union, np.unique(y.astype(str)))


def fast_scores(y: np.ndarray, pred: np.ndarray, k: int, labels: np.ndarray):
    """accuracy, balanced accuracy and macro-F1 of integer-coded labels (k codes; `labels`: the codes macro-F1
    averages over), equal to sklearn's `accuracy_score`, `balanced_accuracy_score` and `f1_score(average=
    "macro", labels=labels, zero_division=0)` (tests/probes/test_probe_nuisance_transfer.py), 100x faster."""
    true = np.bincount(y, minlength=k)
    predicted = np.bincount(pred, minlength=k)
    tp = np.bincount(y[y == pred], minlength=k)
    present = true > 0
    accuracy = tp.sum() / len(y)
    balanced = float(np.mean(tp[present] / true[present]))
    denom = (true + predicted)[labels]
    f1 = np.divide(2 * tp[labels], denom, out=np.zeros(len(labels)), where=denom > 0)
    return {"accuracy": float(accuracy), "balanced_accuracy": balanced, "macro_f1": float(f1.mean())}


def nuisance_classification_metrics(result: Result, y: np.ndarray, pred: np.ndarray, nuisance: np.ndarray,
                                    groups: np.ndarray | None, n_boot: int, seed: int, prefix: str = "") -> None:
    """`<prefix>nuisance.<m>`: the nuisance model's score (baseline: the embedding metric's own), and
    `<prefix><m>_gain_over_nuisance`: embedding minus nuisance, a paired interval (the same resampled rows
    score both), baseline 0, for m in HEADLINE."""
    (yc, pc, nc), k, labels = _codes(y, pred, nuisance)
    for name in HEADLINE:
        base = result.baseline.get(prefix + name)
        ci = bootstrap_ci(lambda i, name=name: fast_scores(yc[i], nc[i], k, labels)[name], len(y), n_boot, seed, groups)
        result.add(f"{prefix}nuisance.{name}", fast_scores(yc, nc, k, labels)[name], ci, base)

        def gain(i, name=name):
            return fast_scores(yc[i], pc[i], k, labels)[name] - fast_scores(yc[i], nc[i], k, labels)[name]
        result.add(f"{prefix}{name}_gain_over_nuisance", gain(np.arange(len(y))),
                   bootstrap_ci(gain, len(y), n_boot, seed, groups), 0.0)


def transfer_classification_metrics(result: Result, y: np.ndarray, pred: np.ndarray, train_y: np.ndarray,
                                    groups: np.ndarray | None, n_boot: int, seed: int,
                                    prefix: str = "transfer.") -> dict:
    """`<prefix><m>` of a model fit on one table and scored on another (intervals over the test table's
    groups or rows). Baselines the honest way, from the training table: accuracy of always predicting the
    training table's majority class; balanced accuracy 1/k (k: the test table's classes), what that constant
    prediction reaches when its class is in the test table; macro-F1 the better of that constant prediction's
    and 1/k (as `label_blind_macro_f1`). Returns the test classes never seen in training, with counts."""
    values, counts = np.unique(train_y.astype(str), return_counts=True)
    majority = np.full(len(y), values[np.argmax(counts)], dtype=object).astype(str)
    (yc, pc, mc), k, labels = _codes(y, pred, majority)
    const = fast_scores(yc, mc, k, labels)
    bases = {"accuracy": const["accuracy"], "balanced_accuracy": 1.0 / len(labels),
             "macro_f1": max(const["macro_f1"], 1.0 / len(labels))}
    for name in HEADLINE:
        ci = bootstrap_ci(lambda i, name=name: fast_scores(yc[i], pc[i], k, labels)[name], len(y), n_boot, seed, groups)
        result.add(prefix + name, fast_scores(yc, pc, k, labels)[name], ci, bases[name])
    test_labels, test_counts = np.unique(y.astype(str), return_counts=True)
    return {str(c): int(n) for c, n in zip(test_labels, test_counts) if c not in set(values)}
