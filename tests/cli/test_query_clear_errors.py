"""`artlens index` and `artlens neighbors` refuse bad arguments in one line with exit 2 (issue 17, point 13):
no traceback for `--recall-queries 0` or `--kind ivfpq` on a small table, `--target-recall` outside (0, 1],
and an unknown `--table` is named, with the store's tables listed."""
import pytest

from artlens.cli.main import main
from artlens.store.catalog import Catalog
from artlens.store.index import IndexConfig
from artlens.store.layout import StoreLayout
from benchmarks.synthetic_tables import write_synthetic_table


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    root = tmp_path_factory.mktemp("clear-errors") / "store"
    write_synthetic_table(root, "t", n=200, dim=16, part_rows=100, clusters=5, seed=0)
    return root


def one_line_error(capsys, command: str) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith(f"artlens {command}: error: ") and "\n" not in err, captured.err
    assert "Traceback" not in captured.err and "internal error" not in err
    return err


@pytest.mark.parametrize("flags, says", [
    (["--recall-queries", "0"], "--recall-queries must be a whole number of at least 1, got 0"),
    (["--recall-queries", "-3"], "--recall-queries must be a whole number of at least 1, got -3"),
    (["--target-recall", "2"], "--target-recall must be a 10-recall@10 in (0, 1], e.g. 0.95, got 2.0"),
    (["--target-recall", "0"], "--target-recall must be a 10-recall@10 in (0, 1]"),
    (["--target-recall", "-0.5"], "--target-recall must be a 10-recall@10 in (0, 1]"),
    (["--kind", "ivfpq"], "--kind 'ivfpq' needs at least 9,984 rows to train its codebooks"),
    (["--kind", "IVF64,PQ4"], "cannot build index 'IVF64,PQ4' over the 200 rows of 't': Number of training "
                              "points (200) should be at least as large as number of clusters"),
])
def test_index_refuses_in_one_line(small, capsys, flags, says):
    assert main(["index", "--store", str(small), "--table", "t", "--no-progress", *flags]) == 2
    err = one_line_error(capsys, "index")
    assert says in err
    assert Catalog(StoreLayout.at(small).catalog_path).get_index("t") is None  # nothing was committed


def test_index_config_checks_its_values_in_the_python_api_too(small):
    with pytest.raises(ValueError, match="recall_queries must be a whole number of at least 1"):
        IndexConfig(small, "t", recall_queries=0)
    with pytest.raises(ValueError, match=r"target_recall must be a 10-recall@10 in \(0, 1\]"):
        IndexConfig(small, "t", target_recall=1.5)
    assert IndexConfig(small, "t", target_recall=1, recall_queries=1).target_recall == 1


def test_neighbors_of_an_unknown_table_lists_the_tables(small, capsys):
    for query in (["--key", "v00000001"], ["--key", "v00000001", "--where", "cluster = 1"]):
        assert main(["neighbors", "--store", str(small), "--table", "nope", *query]) == 2
        err = one_line_error(capsys, "neighbors")
        assert f"no table 'nope' in {small}; tables: ['t']" in err and "pg_enum" not in err
