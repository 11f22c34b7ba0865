"""One hostile sample never stops an extraction: each is a failure row (key, stage, reason), the good samples
beside it are embedded, the run exits 3, and a re-run resumes instead of aborting again."""
import os
import subprocess
import sys
import tarfile

import pytest

import imagefactory as f
from artlens import store
from conftest import REPO, meta
from shardkit import huge_member_tar, tar_entries

LIMIT = 2**20  # max_member_bytes of the in-process runs: the 2 MiB member is over it


def hostile_shard(path):
    jpg = f.jpeg()
    return tar_entries(path, [
        ("good1.jpg", jpg), ("good1.json", meta(n=5, title="first")),
        ("deep.jpg", f.jpeg()), ("deep.json", b'{"a": ' + b"[" * 3000 + b"]" * 3000 + b"}"),
        ("big.jpg", f.jpeg()), ("big.json", meta(n=2**63 + 1, title="big")),
        ("cap.jpg", f.jpeg()), ("cap.json", meta(caption=5, source_path={"dir": "x"}, title=7)),
        ("sur.jpg", f.jpeg()), ("sur.json", b'{"title": "\\ud800"}'),
        ("icc.png", f.png_inflating_chunk(b"iCCP")), ("ztxt.png", f.png_inflating_chunk(b"zTXt")),
        ("itxt.png", f.png_inflating_chunk(b"iTXt", after_idat=True)),
        ("sym.jpg", tarfile.SYMTYPE, "good1.jpg"), ("fifo.jpg", tarfile.FIFOTYPE, ""),
        ("link.jpg", tarfile.LNKTYPE, "good1.jpg"),
        ("huge.jpg", bytes(2 * LIMIT)),
        ("bad\udcffname.jpg", jpg),
        ("good2.jpg", f.png()),
    ])


EXPECTED = {  # key → (stage, words of the reason)
    "deep": ("metadata", "nested too deeply"),
    "sur": ("metadata", "lone surrogate"),
    "icc": ("decode", "chunk inflates past Pillow's limit"),
    "ztxt": ("decode", "chunk inflates past Pillow's limit"),
    "itxt": ("decode", "chunk inflates past Pillow's limit"),
    "sym": ("read", "'sym.jpg' is a symbolic link to 'good1.jpg'"),
    "fifo": ("read", "'fifo.jpg' is a fifo"),
    "huge": ("read", "'huge.jpg' declares 2,097,152 bytes, over max_member_bytes 1,048,576"),
    "bad\\xffname.jpg": ("read", "not valid UTF-8"),
}


def failures_of(store_dir):
    with store.open(store_dir) as s:
        return {r["key"]: r for r in s.sql('SELECT key, stage, error, shard FROM failures').to_pylist()}


@pytest.mark.parametrize("mode", ["w", "w:gz"])
def test_hostile_samples_are_failure_rows_and_the_rest_is_embedded(tmp_path, extract, mode):
    shards = tmp_path / "s"
    shard = hostile_shard(shards / ("00000.tar" if mode == "w" else "00000.tar.gz"))
    summary = extract(shards, max_member_bytes=LIMIT)
    assert (summary.images, summary.failures, summary.exit_code) == (5, len(EXPECTED), 3)
    with store.open(tmp_path / "store") as s:
        rows = {r["key"]: r for r in s.sql("SELECT key, n, title, caption, source_path FROM t").to_pylist()}
        types = {r["column_name"]: r["column_type"] for r in s.sql("DESCRIBE t").to_pylist()}
    assert sorted(rows) == ["big", "cap", "good1", "good2", "link"]
    assert rows["big"]["n"] == "9223372036854775809" and rows["good1"]["n"] == "5"  # n mixes: kept as text
    assert types["n"] == "VARCHAR"
    assert (rows["cap"]["caption"], rows["cap"]["source_path"]) == ("5", '{"dir": "x"}')
    failures = failures_of(tmp_path / "store")
    assert set(failures) == set(EXPECTED)
    for key, (stage, words) in EXPECTED.items():
        assert failures[key]["stage"] == stage and words in failures[key]["error"], failures[key]
        assert failures[key]["shard"] == str(shard)

    again = extract(shards, max_member_bytes=LIMIT)  # resumes: the shard is committed, nothing aborts
    assert (again.shards_skipped, again.images) == (1, 0)
    assert failures_of(tmp_path / "store") == failures


def test_values_that_fit_int64_keep_their_type(tmp_path, extract):
    shards = tmp_path / "s"
    tar_entries(shards / "00000.tar", [("a.jpg", f.jpeg()), ("a.json", meta(n=2**63 - 1, m=-2**63)),
                                       ("b.jpg", f.png()), ("b.json", meta(n=0, m=1))])
    assert extract(shards).exit_code == 0
    with store.open(tmp_path / "store") as s:
        types = {r["column_name"]: r["column_type"] for r in s.sql("DESCRIBE t").to_pylist()}
        values = s.sql("SELECT n, m FROM t ORDER BY key").to_pylist()
    assert (types["n"], types["m"]) == ("BIGINT", "BIGINT")
    assert values == [{"n": 2**63 - 1, "m": -2**63}, {"n": 0, "m": 1}]


@pytest.mark.slow
def test_a_member_declaring_a_gibibyte_is_skipped_unread_with_little_memory(tmp_path, extract):
    """The default max_member_bytes (512 MiB): a 1 GiB member (a hole in a sparse file of a few KB) is a failure
    row, the members around it are embedded, and a process reading the shard never holds the member."""
    shards = tmp_path / "s"
    shard = huge_member_tar(shards / "00000.tar", [("a.jpg", f.jpeg())], "huge.jpg", 2**30,
                            after=[("b.jpg", f.png()), ("b.json", meta(title="after the hole"))])
    assert os.stat(shard).st_blocks * 512 < 1_000_000 < 2**30 < shard.stat().st_size
    summary = extract(shards)
    assert (summary.images, summary.failures, summary.exit_code) == (2, 1, 3)
    failures = failures_of(tmp_path / "store")
    assert list(failures) == ["huge"] and "declares 1,073,741,824 bytes" in failures["huge"]["error"]
    with store.open(tmp_path / "store") as s:
        assert s.sql("SELECT key, title FROM t ORDER BY key").to_pylist() == [
            {"key": "a", "title": None}, {"key": "b", "title": "after the hole"}]
    # the same reading in a fresh process: its peak memory grows by nothing like the member's size
    script = ("import resource, sys\nfrom artlens.pipeline.extract.loader import _records\n"
              "peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024\n"
              "before, failures = peak(), []\nkeys = [r.key for r in _records(sys.argv[1], failures)]\n"
              "print(keys, [x.key for x in failures], peak() - before)")
    run = subprocess.run([sys.executable, "-c", script, str(shard)], cwd=REPO, capture_output=True, text=True,
                         timeout=120, check=True)
    *read, grown = run.stdout.split()
    assert " ".join(read) == "['a', 'b'] ['huge']"
    assert int(grown) < 64 * 2**20, grown  # reading the 1 GiB member would raise the peak by 1 GiB
