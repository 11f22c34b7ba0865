"""The `results` view: one row per (probe result, metric), read from the store's result files; empty with its
columns when there are none; a damaged file left out with a warning naming it, never the whole view."""
import json
import warnings

import numpy as np
import pytest

from artlens import store
from artlens.probes.runner import run_probe
from artlens.store.catalog import TableEntry
from artlens.store.query import StoreWarning
from artlens.store.results import SCHEMA
from artlens.store.writer import TableWriter

COLUMNS = ["result", "probe", "tables", "metric", "value", "ci_low", "ci_high", "baseline", "n", "model",
           "pretrained", "created"]


def _table(root, name, model, n=80, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    style = np.arange(n) % 2
    X = rng.normal(size=(n, dim)) + 1.5 * style[:, None]
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    rows = [{"key": f"k{i:03d}", "shard": "syn", "style": f"s{style[i]}"} for i in range(n)]
    writer = TableWriter(root, TableEntry(name=name, model=model, pretrained="tag-" + model, preprocess="x",
                                          dim=dim))
    writer.commit("syn", rows, X, [])
    writer.finish()


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """Two tables of two models, and a linear and a knn result on each."""
    root = tmp_path_factory.mktemp("results-store")
    _table(root, "a", "ViT-A", seed=0)
    _table(root, "b", "ViT-B", seed=1)
    for table in ("a", "b"):
        run_probe(root, "linear", {"table": table, "label": "style", "n_boot": 40, "folds": 3})
        run_probe(root, "knn", {"table": table, "labels": ["style"], "n_boot": 40, "k": 5})
    return root


def _expected(root):
    """The rows the JSON files say, built here independently of store/results.py."""
    models = {"a": ("ViT-A", "tag-ViT-A"), "b": ("ViT-B", "tag-ViT-B")}
    rows = set()
    for path in sorted((root / "results").glob("*.json")):
        data = json.loads(path.read_text())
        for metric, m in data["metrics"].items():
            rows.add((path.stem, data["probe"], tuple(data["tables"]), metric, m["value"], m["ci"][0], m["ci"][1],
                      data["baseline"].get(metric), data["n"], models[data["tables"][0]][0],
                      models[data["tables"][0]][1]))
    return rows


def test_results_view_has_one_row_per_result_and_metric_matching_the_files(probed):
    with store.open(probed) as s:
        got = s.sql("SELECT * FROM results ORDER BY result, metric")
    assert got.column_names == COLUMNS
    files = sorted((probed / "results").glob("*.json"))
    assert len(files) == 4
    rows = {(r["result"], r["probe"], tuple(r["tables"]), r["metric"], r["value"], r["ci_low"], r["ci_high"],
             r["baseline"], r["n"], r["model"], r["pretrained"]) for r in got.to_pylist()}
    assert rows == _expected(probed) and got.num_rows == len(rows)
    assert {r[1] for r in rows} == {"linear", "knn"} and {r[9] for r in rows} == {"ViT-A", "ViT-B"}
    assert all(r["created"] is not None and r["created"].tzinfo is not None for r in got.to_pylist())


def test_results_view_compares_models_side_by_side(probed):
    with store.open(probed) as s:
        wide = s.sql("SELECT metric, max(value) FILTER (model = 'ViT-A') AS a, max(value) FILTER (model = 'ViT-B') "
                     "AS b FROM results WHERE probe = 'linear' GROUP BY metric ORDER BY metric").to_pylist()
    assert [w["metric"] for w in wide] == ["accuracy", "balanced_accuracy", "macro_f1"]
    assert all(0 <= w["a"] <= 1 and 0 <= w["b"] <= 1 for w in wide)


def test_saved_results_record_when_and_appear_without_reopening(probed, tmp_path):
    _table(tmp_path, "c", "ViT-C")
    with store.open(tmp_path) as s:
        assert s.sql("SELECT count(*) AS n FROM results").column("n")[0].as_py() == 0
        s.save_result("manual", {"probe": "manual", "tables": ["c"], "config": {}, "n": 3,
                                 "metrics": {"score": {"value": 0.5, "ci": [0.25, 0.75]}}, "baseline": {}})
        (row,) = s.sql("SELECT * FROM results").to_pylist()
    assert json.loads((tmp_path / "results" / "manual.json").read_text())["created"]
    assert (row["probe"], row["metric"], row["value"], row["ci_low"], row["ci_high"], row["baseline"], row["n"],
            row["model"]) == ("manual", "score", 0.5, 0.25, 0.75, None, 3, "ViT-C")


def test_results_view_is_empty_with_its_columns_when_there_are_none(tmp_path):
    _table(tmp_path, "c", "ViT-C")
    with store.open(tmp_path) as s:
        got = s.sql("SELECT * FROM results")
        assert got.num_rows == 0 and got.column_names == COLUMNS
        assert s.sql("DESCRIBE results").column("column_type").to_pylist()[2] == "VARCHAR[]"
    assert got.schema.names == SCHEMA.names and got.schema.field("value").type == SCHEMA.field("value").type


@pytest.mark.parametrize("damage", [
    b"", b"{not json", b"\xff\xfe\x00", b"[1, 2]", b'{"probe": 3}', b'{"probe": "x", "tables": "a", "metrics": {}}',
    b'{"probe": "x", "tables": ["a"], "metrics": {"m": {"value": "high", "ci": [0, 1]}}}',
    b'{"probe": "x", "tables": ["a"], "metrics": {"m": {"value": 1, "ci": [0]}}}',
    b'{"probe": "x", "tables": ["a"], "metrics": {"m": 1}}',
], ids=["empty", "truncated", "binary", "list", "probe-not-text", "tables-not-list", "value-not-number",
        "ci-short", "metric-not-object"])
def test_a_damaged_result_file_is_left_out_with_a_warning_naming_it(probed, tmp_path, damage):
    import shutil

    root = tmp_path / "store"
    shutil.copytree(probed, root)
    bad = root / "results" / "zz_damaged.json"
    bad.write_bytes(damage)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with store.open(root) as s:
            got = s.sql("SELECT * FROM results")
            kept = s.results()
    named = [w for w in caught if issubclass(w.category, StoreWarning) and str(bad) in str(w.message)]
    assert named, [str(w.message) for w in caught]
    assert got.num_rows == len(_expected(probed)) and "zz_damaged" not in got.column("result").to_pylist()
    assert len(kept) == 4


def test_hostile_names_and_values_stay_data(tmp_path):
    _table(tmp_path, "c", "ViT-C")
    hostile = "x'); DROP VIEW results; --"
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "h.json").write_text(json.dumps(
        {"probe": hostile, "tables": ["c", "gone"], "n": 1,
         "metrics": {hostile: {"value": None, "ci": [None, None]}}, "baseline": {hostile: 0.1}}))
    with store.open(tmp_path) as s:
        (row,) = s.sql("SELECT * FROM results").to_pylist()
        assert s.sql("SELECT count(*) AS n FROM results").column("n")[0].as_py() == 1
    assert row["probe"] == row["metric"] == hostile and row["value"] is None and row["baseline"] == 0.1
    assert row["tables"] == ["c", "gone"] and row["model"] == "ViT-C"  # a table gone: its model unknown
