"""Resume after SIGKILL: re-running ends with exactly the rows of an uninterrupted run."""
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

import imagefactory as f
import store
from conftest import REPO, TINY_MODEL, meta, write_tar

N_SHARDS, PER_SHARD = 10, 6
# The SIGKILL test's shards hold 24 images: enough work per shard that the commits keep pace with the
# extraction. With 6, parts were sometimes written in a burst (five within a few ms) and the last kill came
# after the run had ended (1 run in 4 failed).
KILL_PER_SHARD = 24


def make_shards(root, per_shard=PER_SHARD):
    for s in range(N_SHARDS):
        members = []
        for i in range(per_shard):
            key = f"s{s}_{i}"
            members += [(f"{key}.jpg", f.jpeg(160 + 8 * i, 120, color=(20 * s, 30 * i, 90))),
                        (f"{key}.json", meta(shard_no=s, item=i))]
        write_tar(root / f"{s:05d}.tar", members)
    return root


def start(shards, store_dir):
    cmd = [sys.executable, "-m", "pipeline.cli", "extract", "--shards", str(shards), "--store", str(store_dir),
           "--table", "t", "--model", TINY_MODEL, "--pretrained", "random", "--device", "cpu",
           "--batch-size", "1", "--workers", "0", "--no-progress"]  # small batches: a shard takes several steps
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def parts(store_dir):
    d = store_dir / "tables" / "t"
    return sorted(d.glob("part-*.parquet")) if d.exists() else []


def kill_when(proc, store_dir, n_parts, extra_delay, timeout=120):
    deadline = time.monotonic() + timeout
    while len(parts(store_dir)) < n_parts and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(extra_delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def rows(store_dir):
    with store.open(store_dir) as s:
        table = s.sql("SELECT key, shard_no, item, embedding FROM t ORDER BY key")
        count, distinct = s.sql("SELECT count(*), count(DISTINCT key) FROM t").to_pylist()[0].values()
    return table.to_pylist(), count, distinct


@pytest.mark.slow
def test_sigkill_at_any_moment_then_rerun_gives_exactly_the_uninterrupted_rows(tmp_path, extract):
    shards = make_shards(tmp_path / "shards", KILL_PER_SHARD)
    reference = extract(shards, store=tmp_path / "reference")
    assert reference.table_rows == N_SHARDS * KILL_PER_SHARD
    expected, _, _ = rows(tmp_path / "reference")

    interrupted = tmp_path / "interrupted"
    # kill while loading the model, while shard 3 and shard 5 are in flight (maybe mid-write)
    for n_parts, delay in [(0, 1.0), (3, 0.0), (5, 0.005)]:
        kill_when(start(shards, interrupted), interrupted, n_parts, delay)
        for part in parts(interrupted):  # a reader never sees a half-written part
            assert pq.ParquetFile(part).metadata.num_rows == KILL_PER_SHARD
    assert len(parts(interrupted)) < N_SHARDS, "the kills came too late to test anything"

    proc = start(shards, interrupted)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]
    got, count, distinct = rows(interrupted)
    assert count == distinct == N_SHARDS * KILL_PER_SHARD
    assert [r["key"] for r in got] == [r["key"] for r in expected]
    for a, b in zip(got, expected):
        assert (a["shard_no"], a["item"]) == (b["shard_no"], b["item"])
        np.testing.assert_allclose(a["embedding"], b["embedding"], atol=1e-6)
    leftovers = [p for p in (interrupted / "tables" / "t").iterdir() if p.name.startswith(".tmp-")]
    assert leftovers == []
    assert b"already done (resumed)" in out
