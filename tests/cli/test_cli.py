"""The `artlens` command line: exit codes, summaries, output formats."""
import csv
import io
import json

import pyarrow.parquet as pq
import pytest

import imagefactory as f
from conftest import TINY_MODEL, write_tar
from artlens.cli.main import COMMANDS, build_parser, main


def extract_args(shards, store_dir, *extra):
    return ["extract", "--shards", str(shards), "--store", str(store_dir), "--table", "t", "--model", TINY_MODEL,
            "--pretrained", "random", "--device", "cpu", "--workers", "0", "--no-progress", *extra]


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out for name in COMMANDS)


def test_exit_0_when_all_embedded_and_3_when_some_failed(tmp_path, capsys):
    good = write_tar(tmp_path / "good" / "00000.tar", [("a.jpg", f.jpeg()), ("b.png", f.png())]).parent
    assert main(extract_args(good, tmp_path / "st")) == 0
    out = capsys.readouterr().out
    assert "2 images embedded, 0 failed" in out and "img/s" in out and "elapsed" in out
    bad = write_tar(tmp_path / "bad" / "00000.tar", [("c.jpg", f.jpeg()), ("d.jpg", f.truncated_jpeg())]).parent
    assert main(extract_args(bad, tmp_path / "st2")) == 3
    out = capsys.readouterr().out
    assert "1 images embedded, 1 failed" in out and "SELECT * FROM failures" in out


def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys):
    assert main(extract_args(tmp_path / "nothing-here", tmp_path / "st")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("artlens extract: error: ") and "do not exist" in err and "\n" not in err
    shards = write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg())]).parent
    assert main(extract_args(shards, tmp_path / "st", "--batch-size", "0")) == 2
    assert "--batch-size must be at least 1" in capsys.readouterr().err
    assert main(["extract", "--shards", str(shards), "--store", str(tmp_path / "st"), "--table", "t",
                 "--model", "No-Such-Model", "--pretrained", "random"]) == 2
    assert "unknown open_clip model 'No-Such-Model'; known models:" in capsys.readouterr().err
    assert main(["sql", "--store", str(tmp_path / "missing"), "SELECT 1"]) == 2


def test_sql_output_formats(tmp_path, capsys):
    shards = write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg()), ("b.jpg", f.jpeg(64, 64))]).parent
    main(extract_args(shards, tmp_path / "st"))
    capsys.readouterr()
    q = "SELECT key, width, embedding FROM t ORDER BY key"
    assert main(["sql", "--store", str(tmp_path / "st"), q, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["key"] for r in rows] == ["a", "b"] and len(json.loads(rows[0]["embedding"])) == 32
    assert main(["sql", "--store", str(tmp_path / "st"), q, "--format", "jsonl"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["width"] for r in lines] == [96, 64]
    out = tmp_path / "r.parquet"
    assert main(["sql", "--store", str(tmp_path / "st"), q, "--format", "parquet", "--out", str(out)]) == 0
    assert pq.read_table(out).num_rows == 2
    assert main(["sql", "--store", str(tmp_path / "st"), "SELECT key FROM t ORDER BY key"]) == 0
    table_out = capsys.readouterr().out
    assert "key" in table_out and "│ a" in table_out


def test_sample_command_writes_labelled_shards(tmp_path, capsys):
    assert main(["sample", "--out", str(tmp_path / "sample"), "--n", "12", "--shard-size", "5"]) == 0
    manifest = json.loads((tmp_path / "sample" / "manifest.json").read_text())
    assert manifest["samples"] == 12 and [s["samples"] for s in manifest["shards"]] == [5, 5, 2]
    assert main(extract_args(tmp_path / "sample", tmp_path / "st")) == 0
    capsys.readouterr()
    main(["sql", "--store", str(tmp_path / "st"), "SELECT count(DISTINCT style) s, count(*) n FROM t",
          "--format", "jsonl"])
    counts = json.loads(capsys.readouterr().out)
    assert counts["n"] == 12 and counts["s"] >= 3
