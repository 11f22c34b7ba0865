"""Resume after SIGKILL: re-running ends with exactly the rows of an uninterrupted run (shards and readers: tests/fixtures/shardkit.py)."""
import numpy as np
import pyarrow.parquet as pq
import pytest

from shardkit import KILL_PER_SHARD, N_SHARDS, kill_when, make_shards, parts, rows, start

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
