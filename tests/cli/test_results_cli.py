"""`artlens results`: the store's probe results as a table, CSV (one row per result and metric) or JSON,
the same rows as the `results` view; an empty store prints the columns."""
import argparse
import csv
import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from artlens import store
from artlens.cli.results import results_args, results_run
from artlens.probes.runner import run_probe
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter


def _cli(*argv):
    p = argparse.ArgumentParser(prog="artlens results")
    results_args(p)
    return results_run(p.parse_args(list(argv)))


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    root = tmp_path_factory.mktemp("results-cli")
    rng = np.random.default_rng(0)
    style = np.arange(60) % 2
    X = rng.normal(size=(60, 8)) + 1.5 * style[:, None]
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    writer = TableWriter(root, TableEntry(name="art", model="ViT-T", pretrained="random", preprocess="x", dim=8))
    writer.commit("syn", [{"key": f"k{i}", "shard": "syn", "style": f"s{style[i]}"} for i in range(60)], X, [])
    writer.finish()
    run_probe(root, "linear", {"table": "art", "label": "style", "n_boot": 40, "folds": 3})
    run_probe(root, "knn", {"table": "art", "labels": ["style"], "n_boot": 40, "k": 5})
    return root


def test_csv_has_one_row_per_result_and_metric(probed, capsys):
    assert _cli("--store", str(probed), "--format", "csv") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    files = {p.stem: json.loads(p.read_text()) for p in (probed / "results").glob("*.json")}
    assert len(rows) == sum(len(d["metrics"]) for d in files.values()) > 0
    for row in rows:
        data = files[row["result"]]
        metric = data["metrics"][row["metric"]]
        assert row["probe"] == data["probe"] and json.loads(row["tables"]) == data["tables"]
        assert float(row["value"]) == pytest.approx(metric["value"])
        assert (float(row["ci_low"]), float(row["ci_high"])) == pytest.approx(tuple(metric["ci"]))
        assert float(row["baseline"]) == pytest.approx(data["baseline"][row["metric"]])
        assert int(row["n"]) == data["n"] == 60 and row["model"] == "ViT-T" and row["pretrained"] == "random"


def test_json_and_table_and_parquet_show_the_same_rows(probed, capsys, tmp_path):
    with store.open(probed) as s:
        want = s.sql("SELECT result, metric, value FROM results").to_pylist()
    assert _cli("--store", str(probed), "--format", "json") == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "knn" in out
    assert _cli("--store", str(probed)) == 0
    assert "style.knn_accuracy" in capsys.readouterr().out
    target = tmp_path / "r.parquet"
    assert _cli("--store", str(probed), "--format", "parquet", "--out", str(target)) == 0
    got = pq.read_table(target).select(["result", "metric", "value"]).to_pylist()
    assert got == want


def test_a_store_without_results_prints_the_columns(tmp_path, capsys):
    writer = TableWriter(tmp_path, TableEntry(name="t", model="m", dim=4))
    writer.commit("s", [{"key": "a", "shard": "s"}], np.ones((1, 4), np.float32), [])
    writer.finish()
    assert _cli("--store", str(tmp_path), "--format", "csv") == 0
    assert capsys.readouterr().out.strip().replace('"', "").split(",")[:4] == ["result", "probe", "tables",
                                                                              "metric"]


def test_no_store_is_a_user_error(tmp_path):
    from artlens.errors import UserError

    with pytest.raises(UserError, match="no store"):
        _cli("--store", str(tmp_path / "missing"))
    with pytest.raises(SystemExit):
        _cli("--store", str(tmp_path), "--format", "xml")
