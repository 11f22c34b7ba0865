"""Crash safety of `artlens extract` at the moments that matter, deterministically (no race against a kill):
an extraction SIGKILLed between a part's bytes and its rename (tests/fixtures/faultkit.py) leaves no visible
part, and re-running it gives exactly the rows and the failures of an uninterrupted run; a shard that cannot be
read at all has its failures in the `failures` view; with `models`, a resumed run gives every table each shard
exactly once when the tables were left in different states, and never rewrites a part a table holds.
Real components throughout: the tiny open_clip model, Parquet, DuckDB, an `artlens` process."""
import os
import signal
import subprocess
from collections import Counter

import numpy as np
import pytest

import faultkit
import imagefactory as f
from artlens import store
from artlens.cli.main import main
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.extract.run import run_extract
from artlens.pipeline.models.load import load_model
from artlens.pipeline.models.spec import ModelSpec
from artlens.store.layout import PART_GLOB, TMP_PREFIX, StoreLayout
from conftest import FIXTURES, REPO, TINY_MODEL, meta, write_tar
from shardkit import on_retry, unreadable

TINY_64 = str(FIXTURES / "models" / "artlens-tiny-vit-64.json")
CLI_MODEL = ["--model", TINY_MODEL, "--pretrained", "random", "--device", "cpu", "--workers", "0", "--no-progress"]


def _corpus(root, n_shards=3):
    """Shards of three good JPEGs (with `.json` fields) and, in every shard, samples that fail: a corrupt JPEG,
    and from the second shard on a truncated one too."""
    for s in range(n_shards):
        members = []
        for i in range(3):
            members += [(f"s{s}_{i}.jpg", f.jpeg(64 + 8 * i, 48, color=(40 * s, 30 * i, 90))),
                        (f"s{s}_{i}.json", meta(shard_no=s, item=i))]
        members.append((f"s{s}_bad.jpg", f.corrupt_jpeg()))
        if s:
            members.append((f"s{s}_cut.jpg", f.truncated_jpeg()))
        write_tar(root / f"{s:05d}.tar", members)
    return root


def _rows(root, table="t"):
    with store.open(root) as s:
        return s.sql(f"SELECT key, shard, embedding FROM {table} ORDER BY key").to_pylist()


def _failures(root, table="t"):
    """The failures view as a sorted list of (key, shard, stage): a multiset, so a row held twice shows."""
    with store.open(root) as s:
        rows = s.sql(f"SELECT key, shard, stage FROM failures WHERE \"table\" = '{table}'").to_pylist()
    return sorted((r["key"] or "", r["shard"], r["stage"]) for r in rows)


def _visible(root, folder="tables", table="t"):
    d = root / folder / table
    return sorted(p.name for p in d.glob(PART_GLOB)) if d.exists() else []


def _temporaries(root, table="t"):
    return sorted(p for folder in ("tables", "failures") for p in (root / folder / table).glob(f"{TMP_PREFIX}*"))


def _same_rows(got, expected):
    assert [(r["key"], r["shard"]) for r in got] == [(r["key"], r["shard"]) for r in expected] and got
    np.testing.assert_allclose([r["embedding"] for r in got], [r["embedding"] for r in expected], atol=1e-6)


# ------------------------------------------------------------------ SIGKILL between a part's bytes and its rename
@pytest.mark.slow  # one `artlens` process: importing torch takes most of its 5 to 20 s
@pytest.mark.parametrize("moment,folder,shown", [
    pytest.param("before-rename", "tables", ["00000.tar", "00001.tar"], id="between-failures-and-embedding-renames"),
    pytest.param("after-fsync", "failures", ["00000.tar"], id="failures-part-fsynced-not-renamed"),
])
def test_a_run_killed_before_a_rename_shows_only_committed_shards_and_its_rerun_equals_an_uninterrupted_one(
        tmp_path, extract, moment, folder, shown):
    shards = _corpus(tmp_path / "shards")
    reference = extract(shards, store=tmp_path / "reference")
    expected_rows, expected_failures = _rows(tmp_path / "reference"), _failures(tmp_path / "reference")
    assert reference.exit_code == 3 and len(expected_failures) == 5 and len(expected_rows) == 9

    # the second shard's part (embedding or failures) is killed after its bytes, before its rename; the first
    # shard is committed
    root = tmp_path / "store"
    cmd = faultkit.command(root, moment, folder, 2, "extract", "--shards", str(shards), "--store",
                           str(root), "--table", "t", *CLI_MODEL)
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, timeout=300)
    err = proc.stderr.decode()
    assert proc.returncode == -signal.SIGKILL, f"not killed at {moment} (rc {proc.returncode}): {err[-2000:]}"
    layout, urls = StoreLayout.at(root), [str(shards / name) for name in ("00000.tar", "00001.tar")]
    cut = (layout.part_path if folder == "tables" else layout.failures_path)("t", urls[1])
    (line,) = [x for x in err.splitlines() if x.startswith(faultkit.MARK)]
    assert line.startswith(f"{faultkit.MARK} {moment} ") and line.endswith(cut.name)

    first = layout.part_path("t", urls[0]).name
    assert _visible(root) == [first]  # the second shard's bytes are written, under a temporary name only
    assert _visible(root, "failures") == [layout.failures_path("t", str(shards / x)).name for x in shown]
    assert [p.name[-len(cut.name):] for p in _temporaries(root)] == [cut.name]
    committed = [r for r in expected_rows if r["shard"].endswith("00000.tar")]
    _same_rows(_rows(root), committed)  # the store opens, its queries see the committed shard's rows only
    assert _failures(root) == [x for x in expected_failures if x[1].rsplit("/", 1)[-1] in shown]
    held = os.stat(root / "tables" / "t" / first)

    again = extract(shards, store=root)
    assert (again.shards_skipped, again.shards_committed, again.exit_code) == (1, 2, 3)
    _same_rows(_rows(root), expected_rows)
    assert _failures(root) == expected_failures  # every failure row once: none lost, none twice
    assert _temporaries(root) == []
    now = os.stat(root / "tables" / "t" / first)
    assert (now.st_ino, now.st_mtime_ns) == (held.st_ino, held.st_mtime_ns)


# ------------------------------------------------------------------ shards that cannot be read at all
def test_the_failures_of_a_shard_that_cannot_be_read_are_in_the_failures_view(tmp_path, capsys):
    shards = tmp_path / "shards"
    write_tar(shards / "00000.tar", [("a.jpg", f.jpeg()), ("a.json", meta(n=1))])
    write_tar(shards / "00001.tar", [("b.jpg", f.jpeg())])
    unreadable(shards / "00001.tar")                          # cannot be opened (a directory in its place)
    (shards / "00002.tar").write_bytes(b"not a tar archive, " * 40)   # garbage bytes
    tar = write_tar(shards / "00003.tar", [("d.jpg", f.jpeg()), ("e.jpg", f.jpeg())])
    first = 512 + -(-len(f.jpeg()) // 512) * 512
    tar.write_bytes(tar.read_bytes()[:first + 100])  # cut inside its second header
    root = tmp_path / "store"
    args = ["extract", "--shards", str(shards), "--store", str(root), "--table", "t", *CLI_MODEL]
    assert main(args) == 3
    assert "1 unreadable (retried next run)" in capsys.readouterr().out
    with store.open(root) as s:
        failures = s.sql("SELECT * FROM failures ORDER BY shard").to_pylist()
        keys = s.sql("SELECT key FROM t ORDER BY key").to_pylist()
    by_shard = {r["shard"].rsplit("/", 1)[-1]: r for r in failures}
    assert sorted(by_shard) == ["00001.tar", "00002.tar", "00003.tar"] and len(failures) == 3
    assert all(r["table"] == "t" and r["key"] is None and r["stage"] == "read" for r in failures)
    assert by_shard["00001.tar"]["error"].startswith("cannot read shard: [Errno 21] Is a directory")
    assert "truncated or corrupt tar" in by_shard["00002.tar"]["error"]
    assert "truncated or corrupt tar (last complete member: 'd.jpg'" in by_shard["00003.tar"]["error"]
    assert keys == [{"key": "a"}, {"key": "d"}]
    assert main(args) == 3  # attempted again, still unreadable: its failure row is there once, not twice
    with store.open(root) as s:
        assert s.sql("SELECT shard, stage FROM failures ORDER BY shard").to_pylist() == \
            [{"shard": r["shard"], "stage": "read"} for r in failures]


# ------------------------------------------------------------------ `models`: tables in different states
@pytest.fixture(scope="module")
def tiny_64():
    return load_model(ModelSpec(model=TINY_64, pretrained="random", device="cpu", seed=0))


A = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)
B = ModelSpec(model=TINY_64, pretrained="random", device="cpu", seed=0)


def _both(shards, root, models=(A, B), **kw):
    kw = {"workers": 0, "progress": False, **kw}
    return ExtractConfig(shards=str(shards), store=str(root), table="art", models=models, **kw)


def _held(root, table):
    """Shard file → rows the table holds for it."""
    with store.open(root) as s:
        rows = s.sql(f"SELECT key, shard FROM {table}").to_pylist()
    assert len({r["key"] for r in rows}) == len(rows)
    return Counter(r["shard"].rsplit("/", 1)[-1] for r in rows)


def _stamp(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns, path.read_bytes()


@pytest.mark.slow  # five extractions with two models: 3 to 6 s on 2 busy cores
def test_models_resume_gives_each_table_every_shard_once_when_the_tables_hold_different_shards(
        tmp_path, tiny_model, tiny_64):
    shards = _corpus(tmp_path / "shards")
    urls = [str(shards / f"{s:05d}.tar") for s in range(3)]
    ref = run_extract(_both(shards, tmp_path / "ref"), loaded=[tiny_model, tiny_64])
    (ta, _), (tb, _) = _both(shards, tmp_path).targets()
    assert ref.tables_rows == {ta: 9, tb: 9}

    root = tmp_path / "store"  # before the run: table A holds shard 1 only, table B shard 2 only
    run_extract(_both(shards, root, models=(A,), only=(urls[1],)), loaded=[tiny_model])
    run_extract(_both(shards, root, models=(B,), only=(urls[2],)), loaded=[tiny_64])
    layout = StoreLayout.at(root)
    assert (_held(root, ta), _held(root, tb)) == ({"00001.tar": 3}, {"00002.tar": 3})
    kept = {(ta, 1): _stamp(layout.part_path(ta, urls[1])), (tb, 2): _stamp(layout.part_path(tb, urls[2]))}

    summary = run_extract(_both(shards, root), loaded=[tiny_model, tiny_64])
    assert (summary.shards_skipped, summary.shards_committed, summary.shards_unreadable) == (0, 3, 0)
    assert summary.tables_rows == {ta: 9, tb: 9}
    for table in (ta, tb):
        assert _held(root, table) == {f"{s:05d}.tar": 3 for s in range(3)}
        _same_rows(_rows(root, table), _rows(tmp_path / "ref", table))
        assert _failures(root, table) == _failures(tmp_path / "ref", table)
    for (table, s), stamp in kept.items():  # what a table held was not written again
        assert _stamp(layout.part_path(table, urls[s])) == stamp
    resumed = run_extract(_both(shards, root), loaded=[tiny_model, tiny_64])
    assert (resumed.shards_skipped, resumed.shards_committed) == (3, 0)


def test_models_retry_commits_a_shard_to_the_table_whose_commit_failed_not_only_to_the_one_that_took_it(
        tmp_path, tiny_model, tiny_64):
    shards = _corpus(tmp_path / "shards")
    root = tmp_path / "store"
    (ta, _), (tb, _) = _both(shards, root).targets()
    blocked = StoreLayout.at(root).failures_dir(tb)  # a file where B's failures folder goes: B's commits fail
    blocked.parent.mkdir(parents=True)
    blocked.write_text("not a folder")
    with on_retry(blocked.unlink) as retry:
        summary = run_extract(_both(shards, root, retries=1), loaded=[tiny_model, tiny_64])
    assert retry.calls == 1 and len(summary.failed_rounds) == 1
    assert (summary.shards_committed, summary.shards_unreadable) == (3, 0)
    for table in (ta, tb):
        assert _held(root, table) == {f"{s:05d}.tar": 3 for s in range(3)}
