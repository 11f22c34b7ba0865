"""`make bench`: the synthetic JPEG corpus and a small CPU run of the benchmark (no timing asserted)."""
import json
import tarfile

import pytest
from PIL import Image


def test_bench_corpus_is_deterministic_and_sized_as_asked(tmp_path):
    from benchmarks.jpeg_corpus import CorpusSpec, write_bench_corpus
    spec = CorpusSpec(n=6, min_side=64, max_side=96, bases=2, shard_size=4)
    write_bench_corpus(str(tmp_path / "a"), spec)
    write_bench_corpus(str(tmp_path / "b"), spec, processes=2)
    for name in ("00000.tar", "00001.tar"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    with tarfile.open(tmp_path / "a" / "00000.tar") as tar:
        images = [Image.open(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith(".jpg")]
    assert len(images) == 4 and all(im.format == "JPEG" and 64 <= max(im.size) <= 96 for im in images)


@pytest.mark.slow
def test_make_bench_small_writes_a_table_and_json(tmp_path, capsys):
    from benchmarks.extraction import main
    out = tmp_path / "bench.json"
    assert main(["--small", "--out", str(out), "--corpus", str(tmp_path / "c"), "--work", str(tmp_path / "w")]) == 0
    result = json.loads(out.read_text())
    row = result["results"][0]
    assert row["model"] == "artlens-tiny-vit" and row["e2e_cpu_decode"]["images"] == 96
    assert row["e2e_cpu_decode"]["failures"] == 0 and row["forward_only"]["img_s"] > 0
    assert row["warmup_cpu_decode"]["images"] == 48  # two shards of 24, unmeasured, before the measured runs
    assert row["ratios"]["gpu_vs_cpu_decode"] is None  # no GPU here: the GPU columns are absent, not invented
    whole = row["whole_command"]
    assert whole["corpus"]["images"] == 96 and whole["one_shard"]["images"] == 24  # a fresh `artlens extract`
    for run in whole.values():
        assert set(run["startup"]) == {"before the run", "models", "first batch"}
        assert 0 < run["startup_to_first_batch_s"] < run["wall_s"] and run["after_the_run_s"] >= 0
    assert result["import_torch_s"] > 0
    # the ceilings: plain open_clip's tower at the same batch on the CPU, the tower's GFLOP, the matrix rate
    assert row["plain_tower"]["img_s"] > 0 and [r["batch_size"] for r in row["plain_tower"]["runs"]] == [64]
    assert 0.01 < row["gflop_per_image"] < 0.1  # 2 blocks of width 64 on 50 tokens and the patch embedding: 0.03
    assert row["matrix_rate"]["tflop_s"] > 0 and row["matrix_rate"]["n"] == 1024
    assert row["ratios"]["e2e_vs_plain_tower"] > 0 and 0 < row["matrix_share"]["plain_tower"] < 1
    printed = capsys.readouterr().out
    assert "against plain open_clip's image tower" in printed
    assert "forward-only" in printed and "the whole command" in printed and "start-up: before the run" in printed
