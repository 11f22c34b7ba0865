"""Exit codes describe the table as the run leaves it: a resumed run over shards whose samples failed exits 3
again, and says how many failures the table holds and how to list them (issue 17, point 5)."""
import json

import pytest

import imagefactory as f
from conftest import TINY_MODEL, write_tar
from artlens.cli.main import main


def extract_args(shards, store_dir):
    return ["extract", "--shards", str(shards), "--store", str(store_dir), "--table", "t", "--model", TINY_MODEL,
            "--pretrained", "random", "--device", "cpu", "--workers", "0", "--no-progress"]


@pytest.mark.slow  # three extractions and a query in-process: about 5 s on 2 shared cores
def test_a_resumed_run_over_failed_samples_exits_3_with_the_count(tmp_path, capsys):
    bad = write_tar(tmp_path / "bad" / "00000.tar", [("a.jpg", f.jpeg()), ("b.jpg", f.truncated_jpeg())]).parent
    write_tar(bad / "00001.tar", [("c.jpg", f.jpeg(64, 64))])
    store = tmp_path / "st"
    assert main(extract_args(bad, store)) == 3
    first = capsys.readouterr().out
    assert "2 images embedded, 1 failed" in first and "holds 1 for the shards of this run" in first

    assert main(extract_args(bad, store)) == 3  # everything resumed, the failure still in the table
    again = capsys.readouterr().out
    assert "0 images embedded, 0 failed" in again and "2 already done (resumed)" in again
    line = next(x for x in again.splitlines() if x.startswith("failed samples:"))
    assert "table t holds 1 for the shards of this run (earlier runs' included)" in line
    assert f"artlens sql --store {store} \"SELECT * FROM failures WHERE \\\"table\\\" = 't'\"" in line

    # the command the line prints lists exactly that failure
    assert main(["sql", "--store", str(store), "SELECT * FROM failures WHERE \"table\" = 't'", "--format",
                 "jsonl"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["key"], r["table"]) for r in rows] == [("b", "t")]


def test_failures_of_shards_the_run_does_not_cover_do_not_count(tmp_path, capsys):
    """Another table's failures, in the same store, leave a clean table's runs at 0, resumed or not."""
    bad = write_tar(tmp_path / "bad" / "00000.tar", [("a.jpg", f.jpeg()), ("b.jpg", f.truncated_jpeg())]).parent
    good = write_tar(tmp_path / "good" / "00000.tar", [("a.jpg", f.jpeg()), ("b.png", f.png())]).parent
    store = tmp_path / "st"
    assert main([*extract_args(bad, store)[:6], "other", *extract_args(bad, store)[7:]]) == 3
    assert main(extract_args(good, store)) == 0
    assert main(extract_args(good, store)) == 0
    out = capsys.readouterr().out
    assert out.count("table t now holds 2 rows") == 2 and "holds 1 for the shards" in out  # only `other`'s run
    assert "failed samples: table t" not in out


def test_a_damaged_failures_part_of_the_table_is_a_warning_not_a_crash(tmp_path, capsys):
    """The table's own failures part cut after its commit: the next run still embeds its new shard, warns in
    one line naming the part and the repair, and exits 3 (the table is not clean)."""
    shards = write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg()), ("b.jpg", f.truncated_jpeg())]).parent
    store = tmp_path / "st"
    assert main(extract_args(shards, store)) == 3
    capsys.readouterr()
    (damaged,) = (store / "failures" / "t").glob("part-*.parquet")
    damaged.write_bytes(damaged.read_bytes()[:40])
    write_tar(shards / "00001.tar", [("c.jpg", f.jpeg(64, 64))])
    assert main(extract_args(shards, store)) == 3
    out, err = capsys.readouterr()
    assert "1 images embedded" in out and "Traceback" not in err
    warning = [line for line in err.splitlines() if "warning:" in line and str(damaged) in line]
    assert len(warning) == 1 and "artlens repair --store" in warning[0], err
