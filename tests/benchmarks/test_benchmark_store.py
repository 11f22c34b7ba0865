"""`make bench-store` machinery on a small table: it runs, prints a table and writes honest JSON."""
import json

from benchmarks.store_indexes import main


def test_bench_store_small(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["--n", "12000", "--dim", "16", "--queries", "50", "--sql-queries", "2",
                 "--work", str(tmp_path / "work"), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    kinds = {r["kind"]: r for r in result["results"]}
    assert set(kinds) == {"auto", "flat", "sql brute force"}
    assert kinds["auto"]["chosen"] == "hnsw" and kinds["flat"]["recall_at_10"] == 1.0
    assert 0.9 <= kinds["auto"]["recall_at_10"] <= 1.0
    assert all(r["p50_ms"] <= r["p99_ms"] for r in result["results"])
    assert result["machine"]["cpus"] >= 1 and "benchmarks.store_indexes" in result["command"]
    assert not (tmp_path / "work").exists()  # scratch store removed
    printed = capsys.readouterr().out
    assert "auto→hnsw" in printed and "sql brute force" in printed
