"""Damaged stores through the command line: one `error:` or `warning:` line each, exit 2 where the command
cannot go on, and `artlens repair` putting the catalog back."""
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from artlens.cli.main import main
from artlens.store.catalog import TableEntry
from artlens.store.layout import StoreLayout
from artlens.store.writer import TableWriter


def vectors(n, dim, seed):
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def two_tables(tmp_path):
    """`art` (2 parts, 4 rows, a failure) and `other` (1 part, 2 rows)."""
    root = tmp_path / "store"
    for name, shards in (("art", ["a", "b"]), ("other", ["x"])):
        writer = TableWriter(root, TableEntry(name=name, model="m", pretrained="p", preprocess="x", dim=4))
        for i, shard in enumerate(shards):
            rows = [{"key": f"{shard}-{j}", "shard": shard} for j in range(2)]
            bad = [{"key": f"{shard}-bad", "shard": shard, "stage": "decode", "error": "cut"}] if shard == "b" else []
            writer.commit(shard, rows, vectors(2, 4, i), bad)
        writer.finish()
    return root


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err.strip().splitlines()


def truncate(path):
    with open(path, "r+b") as fh:
        fh.truncate(os.path.getsize(path) // 2)


def test_sql_on_a_damaged_table_exits_2_in_one_line_and_the_rest_still_works(two_tables, tmp_path, capsys):
    part = StoreLayout.at(two_tables).parts("art")[0]
    truncate(part)
    store = str(two_tables)
    code, _, err = run(capsys, "sql", "SELECT count(*) FROM art", "--store", store)
    assert code == 2 and len(err) == 1
    assert err[0].startswith("artlens sql: error:") and str(part) in err[0]
    assert f"artlens repair --store {store}" in err[0]
    assert run(capsys, "sql", "SELECT 1 AS one", "--store", store, "--format", "csv")[:2] == (0, '"one"\n1\n')
    code, out, _ = run(capsys, "sql", "SELECT count(*) AS n FROM other", "--store", store, "--format", "csv")
    assert (code, out) == (0, '"n"\n2\n')
    source = tmp_path / "vectors.parquet"
    pq.write_table(pa.table({"key": ["p", "q"], "vec": vectors(2, 4, 9).tolist()}), source)
    code, _, err = run(capsys, "import", str(source), "--store", store, "--table", "imported",
                       "--embedding-column", "vec")
    assert code == 0 and err == []
    code, out, _ = run(capsys, "sql", "SELECT count(*) AS n FROM imported", "--store", store, "--format", "csv")
    assert (code, out) == (0, '"n"\n2\n')


def test_sql_on_a_damaged_failures_part_names_it(two_tables, capsys):
    failures_part = StoreLayout.at(two_tables).failure_parts("art")[0]
    truncate(failures_part)
    code, _, err = run(capsys, "sql", "SELECT * FROM failures", "--store", str(two_tables))
    assert code == 2 and len(err) == 1 and str(failures_part) in err[0] and "artlens repair" in err[0]
    assert run(capsys, "sql", "SELECT count(*) FROM art", "--store", str(two_tables))[0] == 0


def test_a_deleted_part_prints_one_warning_line(two_tables, capsys):
    StoreLayout.at(two_tables).parts("art")[1].unlink()
    code, out, err = run(capsys, "sql", "SELECT count(*) AS n FROM art", "--store", str(two_tables),
                         "--format", "csv")
    assert (code, out) == (0, '"n"\n2\n')
    assert len(err) == 1 and err[0].startswith("artlens sql: warning: table 'art': the catalog counts 4 rows")
    assert "artlens repair --store" in err[0]


@pytest.mark.parametrize("content", [b"", bytes(range(256)) * 40], ids=["empty", "random"])
def test_a_damaged_catalog_is_one_line_saying_damaged_not_locked(two_tables, capsys, content):
    StoreLayout.at(two_tables).catalog_path.write_bytes(content)
    for argv in (["sql", "SELECT 1", "--store", str(two_tables)],
                 ["index", "--store", str(two_tables), "--table", "art", "--no-progress"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and len(err) == 1, err
        assert "damaged" in err[0] and "not a DuckDB database file" in err[0] and "locked" not in err[0]
        assert f"artlens repair --store {two_tables}" in err[0]


def test_repair_after_the_catalog_was_deleted(two_tables, capsys):
    layout = StoreLayout.at(two_tables)
    before = {p: p.read_bytes() for p in layout.parts("art") + layout.parts("other")}
    layout.catalog_path.unlink()
    code, _, err = run(capsys, "sql", "SELECT count(*) FROM art", "--store", str(two_tables))
    assert code == 2 and len(err) == 2
    assert err[0].startswith("artlens sql: warning: tables 'art', 'other' have parts")
    assert "artlens repair" in err[0] and "artlens repair" in err[1] and "error:" in err[1]

    code, out, err = run(capsys, "repair", "--store", str(two_tables))
    assert code == 0 and err == []
    assert "was missing: rebuilt from the parts" in out and "table art: 4 rows in 2 parts, 1 failure" in out
    assert {p: p.read_bytes() for p in before} == before
    code, out, err = run(capsys, "sql", "SELECT name, model, dim, rows, failures FROM catalog ORDER BY name",
                         "--store", str(two_tables), "--format", "csv")
    assert (code, err) == (0, [])
    assert out.splitlines()[1:] == ['"art","m",4,4,1', '"other","m",4,2,0']


def test_repair_of_a_missing_store_exits_2(tmp_path, capsys):
    code, _, err = run(capsys, "repair", "--store", str(tmp_path / "nowhere"))
    assert code == 2 and len(err) == 1 and "no store at" in err[0]
