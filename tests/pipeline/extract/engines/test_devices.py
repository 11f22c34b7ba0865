"""`--devices`: one process per device (CPU processes here; the same code runs one per GPU), the split of
shards, retry of a dead process's shards, and resume after SIGKILL. The scenarios every engine shares (the rows
of one process, unreadable shards, retries, strict, resume) are in tests/pipeline/extract/test_engines.py."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, TINY_MODEL
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.extract.engines.devices import DevicesError, _child, assign, parse_devices, run_on_devices
from artlens.cli.args import flag
from shardkit import KILL_PER_SHARD, N_SHARDS, make_shards, parts, rows

SPEC = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)


def _cfg(shards, store_dir, **kw):
    return ExtractConfig(shards=str(shards), store=str(store_dir), table="t", model=SPEC, workers=0,
                         progress=False, batch_size=4, devices=("cpu", "cpu"), **kw)


def test_device_names():
    assert parse_devices("all", cuda_count=lambda: 2) == ["cuda:0", "cuda:1"]
    assert parse_devices("0,1") == ["cuda:0", "cuda:1"]
    assert parse_devices("cpu, cpu") == ["cpu", "cpu"]
    with pytest.raises(DevicesError, match="no CUDA device") as refused:
        parse_devices("all", cuda_count=lambda: 0)
    assert refused.value.render(flag) == "--devices all: torch sees no CUDA device"
    with pytest.raises(DevicesError):
        parse_devices(" , ")


def test_shard_i_goes_to_device_i_mod_n():
    shares = assign([f"s{i}" for i in range(5)], ["cuda:0", "cuda:1"])
    assert shares == {"0:cuda:0": ["s0", "s2", "s4"], "1:cuda:1": ["s1", "s3"]}


def _flaky_child(cfg, out):
    """A device process that dies (a real non-zero exit) the first time it is given shard 00000."""
    marker = Path(cfg.store).parent / f"{Path(cfg.store).name}-died-once"
    if any(u.endswith("00000.tar") for u in cfg.only) and not marker.exists():
        marker.write_text("x")
        os._exit(17)
    _child(cfg, out)


@pytest.mark.slow
def test_a_failed_process_has_its_shards_retried(tmp_path):
    shards = make_shards(tmp_path / "shards")
    summary = run_on_devices(_cfg(shards, tmp_path / "st", retries=1), child=_flaky_child)
    assert summary.failed_processes == 1 and summary.shards_retried == 5
    assert "devices: cpu, cpu; 1 process(es) failed, 5 shard(s) retried" in summary.lines()
    assert summary.table_rows == 60 and summary.exit_code == 0
    _, count, distinct = rows(tmp_path / "st")
    assert count == distinct == 60


def test_without_retries_the_lost_shards_are_reported(tmp_path):
    shards = make_shards(tmp_path / "shards")
    summary = run_on_devices(_cfg(shards, tmp_path / "st", retries=0), child=_flaky_child)
    assert summary.failed_processes == 1 and summary.shards_unreadable == 5 and summary.exit_code == 3
    assert summary.table_rows == 30


@pytest.mark.slow
def test_sigkill_then_rerun_with_devices_gives_the_uninterrupted_rows(tmp_path, extract):
    shards = make_shards(tmp_path / "shards", KILL_PER_SHARD)  # a kill lands before the run ends (test_resume.py)
    extract(shards, store=tmp_path / "ref", batch_size=4)
    cmd = [sys.executable, "-m", "artlens", "extract", "--shards", str(shards), "--store",
           str(tmp_path / "st"), "--table", "t", "--model", TINY_MODEL, "--pretrained", "random",
           "--devices", "cpu,cpu", "--batch-size", "4", "--workers", "0", "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(parts(tmp_path / "st")) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and both device processes
    proc.wait()
    assert len(parts(tmp_path / "st")) < 10, "the run finished before it could be killed"
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "devices: cpu, cpu" in done.stdout
    (ref, _, _), (got, count, distinct) = rows(tmp_path / "ref"), rows(tmp_path / "st")
    assert count == distinct == N_SHARDS * KILL_PER_SHARD and [r["key"] for r in ref] == [r["key"] for r in got]
    assert np.allclose([r["embedding"] for r in ref], [r["embedding"] for r in got], atol=1e-6)
