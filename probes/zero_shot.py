"""`zero-shot`: does the image embedding lie nearest to the text prompts of its own label?

`texts` is a text table of the same store (made by `artlens texts`); it must come from the same model and
weights as `table` (store.compat.check_compatible, else IncompatibleError). Each text label's class vector
is the L2-normalised mean of its L2-normalised prompt embeddings (every template x name: the CLIP_benchmark
protocol); an image is predicted as the label of highest cosine similarity.

Only rows whose `label` value (compared as text, exactly) is one of the text table's labels are scored;
`details` lists the other values with their row counts, and the text labels that no row carries. Those text
labels still compete as predictions. Metrics (95% bootstrap intervals over rows): `top1` (baseline: the
majority class share), `top5` when there are at least 5 text labels (baseline 5/k), `balanced_accuracy`
(baseline 1/k, k = number of text labels) and `macro_f1` (over the labels the scored rows carry; baseline:
always predicting the majority class). `per_class`: precision, recall, F1 and support; `details.confusion`:
rows and columns over all text labels.

`rows` (kept by the store beside the result): one per scored row: key, label, predicted, score (similarity
to its own label's class vector minus the best other label's), correct.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from sklearn.metrics import confusion_matrix

from artlens.store.compat import IncompatibleError, check_compatible

from artlens.probes.classify import classification_metrics
from artlens.probes.config import ConfigError, ProbeConfig
from artlens.probes.data import ProbeDataError, load_rows
from artlens.probes.result import Result
from artlens.probes.stats import bootstrap_ci
from artlens.probes.threads import probe_threads

NAME = "zero-shot"


@dataclass(frozen=True)
class Config(ProbeConfig):
    """Options:
        label: the column of `table` whose values are matched against the text table's labels (compared as text)
        texts: the text table of the prompts (made by `artlens texts`, same model and weights as `table`)
    """
    label: str = ""
    texts: str = ""


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def class_vectors(s, texts: str) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Sorted text labels, their class vectors (k, dim) and the number of prompts behind each."""
    rows = load_rows(s, texts, ["label"], require=["label"])
    labels = rows.columns["label"].astype(str)
    names, counts = np.unique(labels, return_counts=True)
    E = _unit(rows.X)
    W = _unit(np.stack([E[labels == name].mean(axis=0) for name in names]))
    return names, W, {str(n): int(c) for n, c in zip(names, counts)}


def _check_tables(s, cfg: Config) -> None:
    if not cfg.label or not cfg.texts:
        raise ConfigError("zero-shot probe needs label=<column> and texts=<text table>")
    try:
        check_compatible(s.entry(cfg.table), s.entry(cfg.texts))
    except IncompatibleError as exc:
        raise IncompatibleError(f"zero-shot: {exc}") from None


def _matching(y: np.ndarray, names: np.ndarray, cfg: Config) -> tuple[np.ndarray, dict, list]:
    """Mask of rows whose label is a text label; unmatched values with counts; text labels without rows."""
    matched = np.isin(y, names)
    values, counts = np.unique(y[~matched], return_counts=True)
    unmatched = {str(v): int(c) for v, c in zip(values, counts)}
    if not matched.any():
        raise ProbeDataError(f"no row of {cfg.table!r} has a {cfg.label!r} value among the labels of "
                             f"{cfg.texts!r} ({names.tolist()[:10]}); row values: {list(unmatched)[:10]}")
    return matched, unmatched, sorted(set(names.tolist()) - set(y[matched].tolist()))


def _metrics(result: Result, y: np.ndarray, S: np.ndarray, names: np.ndarray, cfg: Config) -> None:
    """top1 / top5 / balanced accuracy / macro-F1 of the cosine scores S (rows x text labels)."""
    k = len(names)
    pred = names[np.argmax(S, axis=1)]
    block = Result(NAME, result.tables, result.config, result.n)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        classification_metrics(block, y, pred, None, cfg.n_boot, cfg.seed)
    top1 = block.metrics["accuracy"]
    result.add("top1", top1.value, top1.ci, block.baseline["accuracy"])
    if k >= 5:
        truth = np.searchsorted(names, y)
        ranked = np.argsort(-S, axis=1, kind="stable")[:, :5]
        hits = (ranked == truth[:, None]).any(axis=1).astype(float)
        ci = bootstrap_ci(lambda i: float(hits[i].mean()), len(y), cfg.n_boot, cfg.seed)
        result.add("top5", hits.mean(), ci, 5 / k)
    balanced = block.metrics["balanced_accuracy"]
    result.add("balanced_accuracy", balanced.value, balanced.ci, 1 / k)
    f1 = block.metrics["macro_f1"]
    result.add("macro_f1", f1.value, f1.ci, block.baseline["macro_f1"])
    result.per_class = block.per_class
    result.details["confusion"] = {"labels": names.tolist(),
                                   "matrix": confusion_matrix(y, pred, labels=names).tolist()}


def score_rows(keys: np.ndarray, y: np.ndarray, S: np.ndarray, names: np.ndarray) -> pa.Table:
    """The rows behind the scores: key, label, predicted, score (cosine similarity to the true label's class
    vector minus the best other label's: above 0 exactly when predicted right), correct."""
    truth = np.searchsorted(names, y)
    true_sim = S[np.arange(len(y)), truth]
    others = S.copy()
    others[np.arange(len(y)), truth] = -np.inf
    best_other = others.max(axis=1) if S.shape[1] > 1 else np.zeros(len(y))
    pred = names[np.argmax(S, axis=1)]
    return pa.table({"key": pa.array(keys.astype(str)), "label": pa.array(y.astype(str)),
                     "predicted": pa.array(pred.astype(str)), "score": pa.array((true_sim - best_other).astype(float)),
                     "correct": pa.array(pred == y)})


@probe_threads
def run(s, cfg: Config) -> Result:
    _check_tables(s, cfg)
    names, W, prompts = class_vectors(s, cfg.texts)
    rows = load_rows(s, cfg.table, [cfg.label], cfg.where, require=[cfg.label])
    y = rows.columns[cfg.label].astype(str)
    matched, unmatched, unused = _matching(y, names, cfg)
    y = y[matched]
    result = Result(NAME, [cfg.table, cfg.texts], cfg.as_dict(), n=len(y))
    S = _unit(rows.X[matched]) @ W.T
    _metrics(result, y, S, names, cfg)
    result.rows = score_rows(rows.keys[matched], y, S, names)
    result.details.update(classes=len(names), prompts_per_label=prompts, scored=len(y),
                          unmatched_rows=int((~matched).sum()), unmatched_labels=unmatched,
                          text_labels_without_rows=unused)
    return result
