"""A store at a URL is read through a lazy mirror: opening it brings the catalog and results, a query brings
the tables it names (fsspec's in-process memory filesystem as the bucket; tests/e2e/test_object_storage_reads.py
does the same against an S3 server)."""
import warnings

import fsspec
import numpy as np
import pytest

from artlens import store
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter


@pytest.fixture
def url(tmp_path, monkeypatch):
    root = tmp_path / "src"
    for name in ("t1", "t2"):
        writer = TableWriter(root, TableEntry(name=name, model="m", dim=4))
        for part in range(3):
            rows = [{"key": f"{name}-{part}-{i}", "shard": f"s{part}", "style": f"s{i % 2}"} for i in range(5)]
            writer.commit(f"s{part}", rows, np.ones((5, 4), np.float32), [])
        writer.finish()
    monkeypatch.setenv("ARTLENS_CACHE", str(tmp_path / "cache"))
    url = f"memory://artlens-lazy-{tmp_path.name}/store"
    fs, base = fsspec.core.url_to_fs(url)
    for path in root.rglob("*"):
        if path.is_file():
            fs.pipe(f"{base}/{path.relative_to(root).as_posix()}", path.read_bytes())
    yield url
    fs.rm(base, recursive=True)


def _mirrored(s, folder):
    d = s.layout.root / folder
    return sorted(p.name for p in d.glob("part-*.parquet")) if d.exists() else []


def test_a_query_fetches_only_the_tables_it_names(url):
    with store.open(url) as s:
        assert s.tables() == ["t1", "t2"] and not _mirrored(s, "tables/t1") and not _mirrored(s, "tables/t2")
        assert s.sql("SELECT name FROM catalog ORDER BY name").column("name").to_pylist() == ["t1", "t2"]
        assert not _mirrored(s, "tables/t1")
        assert s.sql("SELECT count(*) AS n FROM T1 WHERE key <> ?", ["x"]).column("n")[0].as_py() == 15
        assert len(_mirrored(s, "tables/t1")) == 3 and not _mirrored(s, "tables/t2")
        fetched = s.layout.remote.fetched_files
        assert s.sql("SELECT count(*) AS n FROM t1").column("n")[0].as_py() == 15
        assert s.layout.remote.fetched_files == fetched  # already mirrored: nothing fetched again
        both = s.sql("SELECT count(*) AS n FROM t1 JOIN t2 ON t1.style = t2.style").column("n")[0].as_py()
        assert both == 9 * 9 + 6 * 6  # s0: 3 rows of 5 per part, s1: 2
        assert len(_mirrored(s, "tables/t2")) == 3


def test_failures_and_filters_fetch_what_they_read(url):
    with store.open(url) as s:
        assert s.sql("SELECT count(*) AS n FROM failures").column("n")[0].as_py() == 0
        picked = s.neighbors("t1", key="t1-0-0", k=3, where="key IN (SELECT key FROM t2) OR style = 's0'")
        assert picked.num_rows == 3 and set(picked.column("style").to_pylist()) == {"s0"}
        assert _mirrored(s, "tables/t2")


def test_a_writer_in_the_same_process_completes_the_mirror(url):
    from artlens.store.remote import mirror

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with store.open(url) as s:
            assert not _mirrored(s, "tables/t2")
            m = mirror(url)  # what StoreLayout.at (every writer) asks for
            assert m is s.layout.remote and m.complete and len(_mirrored(s, "tables/t2")) == 3
