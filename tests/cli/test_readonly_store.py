"""A store on a read-only mount (issue 17, point 11): reading never needs writing. `neighbors` with parts the
index does not cover yet, `sql`, `probe` (its result printed, one line saying it was not saved) and `report`
(written elsewhere) work; `index` says in one line why it cannot write."""
import json

import numpy as np
import pytest

from mounts import remount, tmpfs

from artlens import store
from artlens.cli.main import main
from artlens.store.catalog import Catalog, TableEntry
from artlens.store.index import build_index
from artlens.store.layout import StoreLayout
from artlens.store.writer import TableWriter

STYLES = ("Baroque", "Cubism", "Ukiyo-e")


def _write_store(root):
    rng = np.random.default_rng(0)
    dim = 8
    centres = rng.normal(size=(3, dim)) * 3
    entry = TableEntry(name="t", model="m", pretrained="p", preprocess="x", dim=dim)
    for shard in ("a", "b"):
        writer = TableWriter(root, entry)
        idx = np.arange(45) + (45 if shard == "b" else 0)
        X = centres[idx % 3] + rng.normal(size=(45, dim))
        rows = [{"key": f"k{i:03d}", "shard": shard, "style": STYLES[i % 3]} for i in idx]
        writer.commit(shard, rows, (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), [])
        entry = writer.finish()
    build_index(root, "t", kind="flat", progress=False)
    assert main(["probe", "linear", "--store", str(root), "--table", "t", "--label", "style",
                 "--n-boot", "50"]) == 0  # a result for the report
    late = TableWriter(root, Catalog(StoreLayout.at(root).catalog_path).get("t"))  # a part the index lacks
    late.commit("late", [{"key": "late", "shard": "late", "style": "Baroque"}], np.eye(dim, dtype=np.float32)[:1],
                [])
    late.finish()


@pytest.fixture(scope="module")
def readonly_store(tmp_path_factory):
    with tmpfs(tmp_path_factory.mktemp("readonly"), "16m", "a read-only store") as mnt:
        root = mnt / "store"
        _write_store(root)
        remount(mnt, "ro")
        with pytest.raises(OSError):  # really read-only, even for root
            (root / "probe-write").write_text("x")
        yield root


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_neighbors_with_parts_the_index_lacks(readonly_store, capsys):
    root = readonly_store
    before = _files(root)
    assert main(["neighbors", "--store", str(root), "--table", "t", "--key", "k001", "-k", "3",
                 "--format", "jsonl"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3 and captured.err == ""
    with store.open(root) as s:  # the new part is searched (the index is brought up to date in memory)
        found = s.neighbors("t", vector=np.eye(8, dtype=np.float32)[0], k=1)
        assert found.column("key").to_pylist() == ["late"]
        assert s.index("t").index.ntotal == 91
    assert _files(root) == before


def test_sql(readonly_store, capsys):
    assert main(["sql", "--store", str(readonly_store), "SELECT count(*) AS n FROM t", "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out) == {"n": 91}


def test_probe_prints_its_result_and_says_it_was_not_saved(readonly_store, tmp_path, capsys):
    root = readonly_store
    before = _files(root)
    assert main(["probe", "linear", "--store", str(root), "--table", "t", "--label", "style", "--n-boot", "50",
                 "--where", "style <> 'Ukiyo-e'"]) == 0
    captured = capsys.readouterr()
    assert "linear on t (n=61): accuracy" in captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: the linear result was not saved in the store") and "Read-only" in lines[0]
    suite = tmp_path / "suite.yaml"
    suite.write_text("probes:\n  - {probe: linear, table: t, label: style, n_boot: 50}\n")
    assert main(["probe", "run", str(suite), "--store", str(root)]) == 0
    captured = capsys.readouterr()
    assert "linear on t (n=91)" in captured.out and captured.err.count("was not saved") == 1
    assert _files(root) == before


def test_report_written_elsewhere(readonly_store, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", "--store", str(readonly_store), "--out", str(out)]) == 0
    assert (out / "index.html").is_file() and (out / "report.md").is_file()
    assert "linear" in (out / "report.md").read_text()


def test_index_says_why_it_cannot_write(readonly_store, capsys):
    assert main(["index", "--store", str(readonly_store), "--table", "t", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("artlens index: error: cannot write the index of 't'") and "Read-only" in err
    assert "\n" not in err
