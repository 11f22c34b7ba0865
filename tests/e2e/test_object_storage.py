"""Shards in an S3 bucket, served by a real S3-compatible server (moto's standalone server) started on
loopback by the test: `artlens extract` reads them by URL (prefix listing and glob), the rows equal those
of the same shards read from disk, `artlens sql` queries the result, and a SIGKILLed run resumes."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, TINY_MODEL
from s3server import moto_server
from shardkit import KILL_PER_SHARD, N_SHARDS, make_shards, parts, rows

ROWS = N_SHARDS * KILL_PER_SHARD  # shards of 24: a kill lands before the run ends (test_resume.py)

s3fs = pytest.importorskip("s3fs", reason="object-storage tests need s3fs and moto[server] (the dev extra)")
pytest.importorskip("moto.server", reason="object-storage tests need moto[server] (the dev extra)")
pytestmark = pytest.mark.slow
CREDS = {"AWS_ACCESS_KEY_ID": "artlens", "AWS_SECRET_ACCESS_KEY": "artlens", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint, tmp_path):
    fs = s3fs.S3FileSystem(key=CREDS["AWS_ACCESS_KEY_ID"], secret=CREDS["AWS_SECRET_ACCESS_KEY"],
                           endpoint_url=s3_endpoint)
    name = f"art-{os.getpid()}-{time.monotonic_ns()}"
    fs.mkdir(name)
    local = make_shards(tmp_path / "shards", KILL_PER_SHARD)
    for tar in sorted(local.glob("*.tar")):
        fs.put(str(tar), f"{name}/shards/{tar.name}")
    return name, local


def _cli(args, endpoint, **popen):
    env = {**os.environ, **CREDS, "FSSPEC_S3_ENDPOINT_URL": endpoint}
    cmd = [sys.executable, "-m", "artlens", *args]
    if popen:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _extract(shards, store_dir):
    return ["extract", "--shards", shards, "--store", str(store_dir), "--table", "t", "--model", TINY_MODEL,
            "--pretrained", "random", "--device", "cpu", "--batch-size", "4", "--workers", "2", "--no-progress"]


def test_extract_from_a_bucket_equals_extract_from_disk(bucket, s3_endpoint, tmp_path, extract):
    name, local = bucket
    extract(local, store=tmp_path / "disk", batch_size=4)
    for spec, store_dir in ((f"s3://{name}/shards/", tmp_path / "s3"), (f"s3://{name}/shards/*.tar", tmp_path / "glob")):
        done = _cli(_extract(spec, store_dir), s3_endpoint)
        assert done.returncode == 0, done.stdout + done.stderr[-2000:]
        (disk, _, _), (remote, count, distinct) = rows(tmp_path / "disk"), rows(store_dir)
        assert count == distinct == ROWS and [r["key"] for r in disk] == [r["key"] for r in remote]
        assert np.allclose([r["embedding"] for r in disk], [r["embedding"] for r in remote], atol=1e-6)
    query = _cli(["sql", "--store", str(tmp_path / "s3"), "--format", "csv",
                  "SELECT count(*) AS n, min(shard) AS first FROM t"], s3_endpoint)
    assert query.returncode == 0 and f'{ROWS},"s3://{name}/shards/00000.tar"' in query.stdout


def test_a_killed_extraction_from_a_bucket_resumes(bucket, s3_endpoint, tmp_path, extract):
    name, local = bucket
    extract(local, store=tmp_path / "disk", batch_size=4)
    args = _extract(f"s3://{name}/shards/", tmp_path / "s3")
    proc = _cli(args, s3_endpoint, start_new_session=True)
    deadline = time.monotonic() + 120
    while len(parts(tmp_path / "s3")) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(parts(tmp_path / "s3")) < 10, "the run finished before it could be killed"
    done = _cli(args, s3_endpoint)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "already done (resumed)" in done.stdout
    (disk, _, _), (remote, count, distinct) = rows(tmp_path / "disk"), rows(tmp_path / "s3")
    assert count == distinct == ROWS and [r["key"] for r in disk] == [r["key"] for r in remote]


def _remote_parts(endpoint, prefix):
    fs = s3fs.S3FileSystem(key=CREDS["AWS_ACCESS_KEY_ID"], secret=CREDS["AWS_SECRET_ACCESS_KEY"], endpoint_url=endpoint)
    return [p for p in fs.find(prefix) if p.rsplit("/", 1)[-1].startswith("part-")]


def test_store_in_a_bucket_extract_query_and_resume_from_another_machine(bucket, s3_endpoint, tmp_path, extract):
    """Shards in a bucket → a store in a bucket. Each process has its own mirror (ARTLENS_CACHE), as separate
    machines would: the killed run's mirror is thrown away, and the re-run and the query start empty."""
    name, local = bucket
    extract(local, store=tmp_path / "disk", batch_size=4)
    store_url = f"s3://{name}/artstore"
    args = _extract(f"s3://{name}/shards/", store_url)
    first = subprocess.Popen(
        [sys.executable, "-m", "artlens", *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **CREDS, "FSSPEC_S3_ENDPOINT_URL": s3_endpoint, "ARTLENS_CACHE": str(tmp_path / "m1")},
        start_new_session=True)
    deadline = time.monotonic() + 120
    while len(_remote_parts(s3_endpoint, f"{name}/artstore/tables")) < 3 and first.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    committed = len(_remote_parts(s3_endpoint, f"{name}/artstore/tables"))
    assert 3 <= committed < 10, committed

    def run(cache, *cli):
        env = {**os.environ, **CREDS, "FSSPEC_S3_ENDPOINT_URL": s3_endpoint, "ARTLENS_CACHE": str(tmp_path / cache)}
        return subprocess.run([sys.executable, "-m", "artlens", *cli], cwd=REPO, env=env, capture_output=True,
                              text=True, timeout=300)

    again = run("m2", *args)
    assert again.returncode == 0, again.stdout + again.stderr[-2000:]
    assert f"{committed} already done (resumed)" in again.stdout
    assert len(_remote_parts(s3_endpoint, f"{name}/artstore/tables")) == 10
    query = run("m3", "sql", "--store", store_url, "--format", "csv",
                "SELECT count(*) AS n, count(DISTINCT key) AS d FROM t")
    assert query.returncode == 0 and f"{ROWS},{ROWS}" in query.stdout, query.stdout + query.stderr[-2000:]
    embeddings = run("m4", "sql", "--store", store_url, "--format", "jsonl", "SELECT key, embedding FROM t ORDER BY key")
    import json
    got = [json.loads(line) for line in embeddings.stdout.splitlines() if line.strip()]
    disk, _, _ = rows(tmp_path / "disk")
    assert [g["key"] for g in got] == [r["key"] for r in disk]
    assert np.allclose([g["embedding"] for g in got], [r["embedding"] for r in disk], atol=1e-6)
