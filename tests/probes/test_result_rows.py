"""The rows behind a probe result (Result.rows, kept beside its JSON as `<name>.rows.parquet`): one row per
scored row with its key, agreeing with the result's own confusion matrix and metrics; the JSON keeps its
shape; a result without rows, and a damaged rows file, give None (the latter with a warning)."""
from __future__ import annotations

import json
import warnings
from collections import Counter

import numpy as np
import pytest

from artlens import store
from artlens.probes.result import Result
from artlens.probes.runner import result_name, run_probe
from artlens.store.catalog import TableEntry
from artlens.store.query import StoreWarning
from artlens.store.writer import TableWriter

DIM, N, CLASSES = 16, 120, 3
JSON_KEYS = {"probe", "tables", "config", "n", "metrics", "baseline", "per_class", "details", "created"}


@pytest.fixture
def art(tmp_path):
    """A store with `art` (120 rows, 3 overlapping style clusters, a numeric `score`, one row without a
    style) and `prompts`, a text table whose class vectors are the style centres."""
    root = tmp_path / "store"
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(CLASSES, DIM))
    style = np.arange(N) % CLASSES
    X = centres[style] + 1.2 * rng.normal(size=(N, DIM))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    rows = [{"key": f"k{i:03d}", "shard": "syn", "style": None if i == 5 else f"s{style[i]}",
             "score": float(X[i, 0] * 3 + 0.2 * rng.normal())} for i in range(N)]
    writer = TableWriter(root, TableEntry(name="art", model="m", pretrained="p", preprocess="x", dim=DIM))
    writer.commit("syn", rows, X, [])
    writer.finish()
    prompts = [{"key": f"s{c}|0", "shard": "prompts.yaml", "label": f"s{c}", "template": "{}", "name": f"s{c}",
                "prompt": f"s{c}"} for c in range(CLASSES)]
    text = TableWriter(root, TableEntry(name="prompts", kind="text", model="m", pretrained="p",
                                        preprocess="tokenizer", dim=DIM))
    text.commit("prompts.yaml", prompts, (centres / np.linalg.norm(centres, axis=1, keepdims=True))
                .astype(np.float32), [])
    text.finish()
    return root


def _saved(root, result: Result) -> tuple[str, dict]:
    """The name the store lists the result by, and its JSON as written."""
    with store.open(root) as s:
        (entry,) = [r for r in s.results() if r["probe"] == result.probe]
        path = s.layout.result_path(entry["name"])
    return entry["name"], json.loads(path.read_text())


def _cells(labels, predicted) -> Counter:
    return Counter(zip(labels, predicted))


def test_linear_rows_match_the_confusion_matrix_cell_by_cell(art):
    result = run_probe(art, "linear", {"table": "art", "label": "style", "Cs": (1.0,), "n_boot": 40,
                                       "min_count": 5})
    name, saved = _saved(art, result)
    assert name == result_name(result)
    with store.open(art) as s:
        rows = s.result_rows(name)
        keys = s.sql("SELECT key FROM art WHERE style IS NOT NULL ORDER BY key").column("key").to_pylist()
        assert s.sql(f"SELECT count(*) AS n FROM results WHERE result = '{name}'").column("n")[0].as_py() > 0
    assert rows.column_names == ["key", "label", "predicted", "p_true", "correct", "fold"]
    assert rows.num_rows == result.n == N - 1
    assert rows.column("key").to_pylist() == keys  # the rows the probe scored, in its order: k005 left out
    data = rows.to_pydict()
    confusion = saved["details"]["confusion"]
    counts = _cells(data["label"], data["predicted"])
    for i, true in enumerate(confusion["labels"]):
        for j, predicted in enumerate(confusion["labels"]):
            assert counts[(true, predicted)] == confusion["matrix"][i][j], (true, predicted)
    assert data["correct"] == [a == b for a, b in zip(data["label"], data["predicted"])]
    assert np.mean(data["correct"]) == pytest.approx(saved["metrics"]["accuracy"]["value"])
    p = np.asarray(data["p_true"])
    assert ((p >= 0) & (p <= 1)).all() and len(set(p.round(6))) > N // 2  # a real probability per row
    # a row predicted right had its true class the most probable of the 3, so p_true above 1/3
    assert (p[np.asarray(data["correct"])] > 1 / CLASSES - 1e-9).all()
    assert set(data["fold"]) == set(range(result.config["folds"]))


def test_the_json_keeps_its_shape(art):
    result = run_probe(art, "linear", {"table": "art", "label": "style", "Cs": (1.0,), "n_boot": 40})
    _, saved = _saved(art, result)
    assert set(saved) == JSON_KEYS  # no rows (nor anything else) added to the file other tools read
    assert "rows" not in result.to_dict() and result.rows is not None
    assert Result.from_dict(saved).to_dict()["metrics"] == result.to_dict()["metrics"]


def test_regression_rows_give_the_residuals_and_the_mae(art):
    result = run_probe(art, "regression", {"table": "art", "target": "score", "alphas": (1.0,), "n_boot": 40})
    name, saved = _saved(art, result)
    with store.open(art) as s:
        rows = s.result_rows(name).to_pydict()
        truth = dict(zip(*s.sql("SELECT key, score FROM art").to_pydict().values()))
    assert sorted(rows) == ["fold", "key", "predicted", "residual", "target"]
    assert len(rows["key"]) == result.n == N
    assert rows["target"] == [truth[k] for k in rows["key"]]
    residual = np.asarray(rows["residual"])
    assert np.allclose(residual, np.asarray(rows["predicted"]) - np.asarray(rows["target"]))
    assert np.abs(residual).mean() == pytest.approx(saved["metrics"]["mae"]["value"], rel=1e-12)


def test_knn_and_zero_shot_rows(art):
    knn = run_probe(art, "knn", {"table": "art", "labels": ("style",), "k": 5, "n_boot": 40})
    zero = run_probe(art, "zero-shot", {"table": "art", "label": "style", "texts": "prompts", "n_boot": 40})
    with store.open(art) as s:
        knn_rows = s.result_rows(result_name(knn)).to_pydict()
        zero_rows = s.result_rows(result_name(zero)).to_pydict()
    assert sorted(knn_rows) == ["column", "correct", "key", "label", "predicted", "score"]
    assert set(knn_rows["column"]) == {"style"} and len(knn_rows["key"]) == N - 1
    assert np.mean(knn_rows["correct"]) == pytest.approx(knn.metrics["style.knn_accuracy"].value)
    assert np.mean(knn_rows["score"]) == pytest.approx(knn.metrics["style.purity"].value)
    assert sorted(zero_rows) == ["correct", "key", "label", "predicted", "score"]
    confusion = zero.details["confusion"]
    counts = _cells(zero_rows["label"], zero_rows["predicted"])
    assert all(counts[(t, p)] == confusion["matrix"][i][j] for i, t in enumerate(confusion["labels"])
               for j, p in enumerate(confusion["labels"]))
    score, correct = np.asarray(zero_rows["score"]), np.asarray(zero_rows["correct"])
    assert (score[correct] > 0).all() and (score[~correct] <= 0).all()  # a margin over the best other label


def test_a_result_saved_without_rows_has_none_and_drops_old_rows(art):
    result = run_probe(art, "linear", {"table": "art", "label": "style", "Cs": (1.0,), "n_boot": 40})
    name = result_name(result)
    with store.open(art) as s:
        assert s.result_rows(name) is not None
        s.save_result(name, result.to_dict())  # again, without rows: the earlier rows are not its rows
        assert s.result_rows(name) is None
        assert not s.layout.result_rows_path(name).exists()
        s.save_result("handmade", {"probe": "custom", "tables": ["art"], "config": {}, "n": 1, "metrics": {}})
        assert s.result_rows("handmade") is None
        assert s.result_rows("no such result") is None


def test_a_damaged_rows_file_warns_and_gives_none(art):
    result = run_probe(art, "linear", {"table": "art", "label": "style", "Cs": (1.0,), "n_boot": 40})
    name = result_name(result)
    with store.open(art) as s:
        path = s.layout.result_rows_path(name)
        path.write_bytes(path.read_bytes()[:100])  # truncated
        with pytest.warns(StoreWarning, match="cannot be read"):
            assert s.result_rows(name) is None
        path.write_text("<script>alert(1)</script>")
        with pytest.warns(StoreWarning, match=name):
            assert s.result_rows(name) is None
        with warnings.catch_warnings():
            warnings.simplefilter("error", StoreWarning)  # the results themselves are unaffected
            assert [r["name"] for r in s.results()] == [name]
            assert s.results_table().num_rows > 0


def test_rows_without_keys_are_refused(art):
    import pyarrow as pa

    with store.open(art) as s:
        with pytest.raises(ValueError, match="`key` column"):
            s.save_result("bad", {"probe": "x", "tables": [], "config": {}, "n": 0, "metrics": {}},
                          rows=pa.table({"label": ["a"]}))
        assert not s.layout.result_path("bad").exists()
