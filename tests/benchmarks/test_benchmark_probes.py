"""`make bench-probes` machinery on a tiny table: every step of the default suite runs, kNN gets its FAISS
figure and ratio, and the JSON and the printed table have their shape (no timing assertions)."""
import json

from benchmarks.probes import EXTRA, SUITE, main, suite_steps


def test_the_steps_are_the_suites_probes_mapped_onto_the_synthetic_tables():
    steps = suite_steps({"table": "t", "texts": "p"})
    names = [name for name, _ in steps]
    assert names == ["linear", "knn", "rsa", "zero-shot", *(name for name, _ in EXTRA)]
    assert all(options["table"] == "t" and options["seed"] == 0 for _, options in steps)
    assert dict(steps)["zero-shot"]["texts"] == "p" and "group" not in dict(steps)["zero-shot"]
    assert steps[0][1] == {"seed": 0, "n_boot": 500, "table": "t", "label": "style", "group": "artist"}
    assert [o.get("group") for n, o in steps if n == "knn"] == ["artist", None]


def test_bench_probes_tiny(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--rows", "300", "--dim", "32", "--work", str(tmp_path / "work"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [s["n"] for s in result["sizes"]] == [300] and result["threads"] == 1
    assert result["suite"] == str(SUITE.relative_to(SUITE.parents[2]))
    rows = result["sizes"][0]["results"]
    assert [r["probe"] for r in rows] == [name for name, _ in suite_steps({"table": "t", "texts": "p"})]
    assert all(0 < r["rows"] <= 300 and r["seconds"] > 0 for r in rows)  # linear drops classes under min_count
    knn = [r for r in rows if r["probe"] == "knn"]
    assert len(knn) == 2 and all(r["rows"] == 300 and r["faiss_s"] >= 0 and r["ratio_to_faiss"] > 0 for r in knn)
    assert all("faiss_s" not in r for r in rows if r["probe"] != "knn")
    assert not (tmp_path / "work").exists()  # scratch store removed
    printed = capsys.readouterr().out
    assert "300 rows, dim 32" in printed and "knn group=artist" in printed and "FAISS s" in printed
