"""Readers of a store in a bucket fetch only what the query needs: against a real S3-compatible server (moto's
standalone server on loopback, as tests/e2e/test_object_storage.py), whose request log is the measure: every
object GET it served is counted, with the object's size in the bucket."""
import csv
import io
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from s3server import moto_server

s3fs = pytest.importorskip("s3fs", reason="object-storage tests need s3fs and moto[server] (the dev extra)")
pytest.importorskip("moto.server", reason="object-storage tests need moto[server] (the dev extra)")
pytestmark = pytest.mark.slow
CREDS = {"AWS_ACCESS_KEY_ID": "artlens", "AWS_SECRET_ACCESS_KEY": "artlens", "AWS_DEFAULT_REGION": "us-east-1"}
PARTS, ROWS, DIM = 8, 40, 64
_REQUEST = re.compile(r'"(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP/[\d.]+" (\d+)')


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(endpoint, log file) of a moto S3 server whose stderr is its request log."""
    log = tmp_path_factory.mktemp("moto") / "requests.log"
    with open(log, "wb") as fh, moto_server(fh) as endpoint:
        yield endpoint, log


def _fs(endpoint):
    return s3fs.S3FileSystem(key=CREDS["AWS_ACCESS_KEY_ID"], secret=CREDS["AWS_SECRET_ACCESS_KEY"],
                             endpoint_url=endpoint)


def _build(root):
    """Two tables (t1, t2) of PARTS parts each, labelled, with a failures part per table."""
    from artlens.store.catalog import TableEntry
    from artlens.store.writer import TableWriter

    rng = np.random.default_rng(0)
    for name in ("t1", "t2"):
        writer = TableWriter(root, TableEntry(name=name, model="m-" + name, pretrained="p", preprocess="x", dim=DIM))
        for part in range(PARTS):
            style = (np.arange(ROWS) + part) % 2
            X = rng.normal(size=(ROWS, DIM)) + 2.0 * style[:, None]
            X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
            rows = [{"key": f"{name}-{part}-{i}", "shard": f"s{part}", "style": f"s{style[i]}",
                     "note": "x" * 200} for i in range(ROWS)]
            failures = [{"key": f"{name}-{part}-bad", "stage": "decode", "error": "broken"}] if part == 0 else []
            writer.commit(f"s{part}", rows, X, failures)
        writer.finish()


@pytest.fixture(scope="module")
def bucket_store(server, tmp_path_factory):
    """A store built on disk, copied into a bucket: (url, {object path under the store: size})."""
    endpoint, _ = server
    local = tmp_path_factory.mktemp("store-src")
    _build(local)
    fs = _fs(endpoint)
    name = f"reads-{os.getpid()}-{time.monotonic_ns()}"
    fs.mkdir(name)
    for path in sorted(p for p in local.rglob("*") if p.is_file() and not p.name.endswith(".wal")):
        fs.put(str(path), f"{name}/artstore/{path.relative_to(local).as_posix()}")
    sizes = {p[len(name) + len("/artstore/") :]: info["size"]
             for p, info in fs.find(f"{name}/artstore", detail=True).items()}
    assert sum(k.startswith("tables/t1/part-") for k in sizes) == PARTS
    return f"s3://{name}/artstore", name, sizes


def _run(server, tmp_path, *argv):
    """Run an artlens command on a fresh mirror (another machine) and return (result, {object: GETs})."""
    endpoint, log = server
    start = log.stat().st_size
    env = {**os.environ, **CREDS, "FSSPEC_S3_ENDPOINT_URL": endpoint,
           "ARTLENS_CACHE": str(tmp_path / f"cache-{time.monotonic_ns()}")}
    done = subprocess.run([sys.executable, "-m", "artlens", *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    time.sleep(0.2)  # the server writes its log line after the response
    with open(log, "rb") as fh:
        fh.seek(start)
        text = fh.read().decode(errors="replace")
    gets = {}
    for method, path, status in _REQUEST.findall(text):
        if method == "GET" and "?" not in path and status in ("200", "206"):
            gets[path] = gets.get(path, 0) + 1
    return done, gets


def _fetched(gets, bucket, sizes):
    prefix = f"/{bucket}/artstore/"
    got = {p[len(prefix):]: n for p, n in gets.items() if p.startswith(prefix)}
    return got, sum(sizes[p] for p in got)


def test_the_request_log_counts_object_gets(server, bucket_store, tmp_path):
    """The measure itself: reading every object of the store is seen as every object fetched."""
    url, bucket, sizes = bucket_store
    done, gets = _run(server, tmp_path, "sql", "--store", url, "--format", "csv",
                      "SELECT (SELECT count(*) FROM t1) + (SELECT count(*) FROM t2) "
                      "+ (SELECT count(*) FROM failures) AS n")
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(csv.reader(io.StringIO(done.stdout)))[1:] == [[str(2 * PARTS * ROWS + 2)]]
    fetched, _ = _fetched(gets, bucket, sizes)
    assert {p for p in sizes if p.startswith(("tables/", "failures/"))} <= set(fetched)


def test_sql_on_one_table_fetches_that_table_only(server, bucket_store, tmp_path):
    url, bucket, sizes = bucket_store
    whole = sum(sizes.values())
    done, gets = _run(server, tmp_path, "sql", "--store", url, "--format", "csv",
                      "SELECT count(*) AS n, count(DISTINCT style) AS styles FROM t1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(csv.reader(io.StringIO(done.stdout)))[1:] == [[str(PARTS * ROWS), "2"]]
    fetched, nbytes = _fetched(gets, bucket, sizes)
    assert not [p for p in fetched if p.startswith(("tables/t2/", "failures/"))], sorted(fetched)
    assert sum(p.startswith("tables/t1/part-") for p in fetched) == PARTS
    t2 = sum(s for p, s in sizes.items() if p.startswith("tables/t2/"))
    assert nbytes <= whole - t2 < whole, (nbytes, whole)
    data = {p: s for p, s in sizes.items() if p.startswith(("tables/", "failures/", "indexes/"))}
    got = sum(data[p] for p in fetched if p in data)
    assert got == sum(s for p, s in data.items() if p.startswith("tables/t1/")) < sum(data.values())
    print(f"\nSELECT count(*) FROM t1: fetched {nbytes:,} of {whole:,} bytes ({len(fetched)} of {len(sizes)} "
          f"objects); of the table data {got:,} of {sum(data.values()):,} bytes")


def test_results_and_catalog_need_no_table(server, bucket_store, tmp_path):
    url, bucket, sizes = bucket_store
    done, gets = _run(server, tmp_path, "sql", "--store", url, "--format", "csv",
                      "SELECT name, rows FROM catalog ORDER BY name")
    assert done.returncode == 0, done.stderr[-2000:]
    counts = [["t1", str(PARTS * ROWS)], ["t2", str(PARTS * ROWS)]]
    assert list(csv.reader(io.StringIO(done.stdout)))[1:] == counts
    fetched, _ = _fetched(gets, bucket, sizes)
    assert not [p for p in fetched if p.startswith(("tables/", "failures/", "indexes/"))], sorted(fetched)


def test_a_filter_fetches_the_tables_it_names_and_stays_locked(server, bucket_store, tmp_path):
    url, bucket, sizes = bucket_store
    done, gets = _run(server, tmp_path, "neighbors", "--store", url, "--table", "t1", "--key", "t1-0-0", "-k", "3",
                      "--where", "style = 's0'", "--format", "csv")
    assert done.returncode == 0, done.stderr[-2000:]
    hits = list(csv.DictReader(io.StringIO(done.stdout)))
    assert len(hits) == 3 and {h["style"] for h in hits} == {"s0"}, done.stdout
    fetched, _ = _fetched(gets, bucket, sizes)
    assert not [p for p in fetched if p.startswith("tables/t2/")]
    # a subquery over the other table: fetched for it, and the filter still reads nothing outside the store
    done, gets = _run(server, tmp_path, "neighbors", "--store", url, "--table", "t1", "--key", "t1-0-0", "-k", "3",
                      "--where", "key NOT IN (SELECT key FROM t2)", "--format", "csv")
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list(csv.DictReader(io.StringIO(done.stdout)))) == 3
    fetched, _ = _fetched(gets, bucket, sizes)
    assert any(p.startswith("tables/t2/") for p in fetched)
    done, _ = _run(server, tmp_path, "neighbors", "--store", url, "--table", "t1", "--key", "t1-0-0",
                   "--where", "key IN (SELECT * FROM read_csv('/etc/passwd'))")
    assert done.returncode == 2 and "may read only the store's own tables" in done.stderr, done.stderr[-2000:]


def test_a_probe_on_a_bucket_reads_its_table_and_keeps_its_result(server, bucket_store, tmp_path):
    url, bucket, sizes = bucket_store
    done, gets = _run(server, tmp_path, "probe", "linear", "--store", url, "--table", "t1", "--label", "style",
                      "--n-boot", "40")
    assert done.returncode == 0, done.stderr[-2000:]
    fetched, _ = _fetched(gets, bucket, sizes)
    assert not [p for p in fetched if p.startswith("tables/t2/")]
    done, _ = _run(server, tmp_path, "sql", "--store", url, "--format", "csv",
                   "SELECT probe, tables, metric, model FROM results WHERE metric = 'accuracy'")
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(csv.reader(io.StringIO(done.stdout)))[1:] == [["linear", '["t1"]', "accuracy", "m-t1"]], done.stdout
