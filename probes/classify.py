"""Shared pieces of the classification probes: out-of-fold splits that respect groups, and the standard
metric block (accuracy, balanced accuracy, macro-F1 with bootstrap CIs and baselines, per-class, confusion)."""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score
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
    scorers = {
        "accuracy": (lambda i: accuracy_score(y[i], pred[i]), majority_accuracy(y)),
        "balanced_accuracy": (lambda i: balanced_accuracy_score(y[i], pred[i]), 1.0 / len(labels)),
        "macro_f1": (lambda i: f1_score(y[i], pred[i], average="macro", labels=labels, zero_division=0),
                     label_blind_macro_f1(y, labels)),
    }
    for name, (fn, baseline) in scorers.items():
        with warnings.catch_warnings():  # a resample may lack a class: expected, not worth a warning each
            warnings.simplefilter("ignore", UserWarning)
            ci = bootstrap_ci(fn, len(y), n_boot, seed, groups)
        result.add(name, fn(np.arange(len(y))), ci, baseline)
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
