"""`where` filters (neighbours, probes, a suite's `where:`): one SQL expression, run where it can read only the
store and write nothing; legitimate filters, subqueries over the store's tables included, still work."""
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import artlens
from artlens import store
from artlens.cli.main import main
from artlens.store.catalog import TableEntry
from artlens.store.filters import FilterError, check_filter, select_rows
from artlens.store.writer import TableWriter

#: The break-out of issue 17: pasted into `WHERE (...)` it closed the filter, ran a COPY, and reopened it.
INJECTION = "true); COPY (SELECT 'x') TO '{target}'; SELECT key, shard, embedding FROM t WHERE (true"
STYLES = ("Baroque", "Cubism", "Ukiyo-e")


@pytest.fixture(scope="module")
def art(tmp_path_factory):
    """`t`: 60 rows in 3 styles (20 each, clustered), two shards; `picks`: a table of 6 of its keys."""
    root = tmp_path_factory.mktemp("filters") / "store"
    rng = np.random.default_rng(0)
    dim = 8
    centres = rng.normal(size=(3, dim)) * 3
    for shard in ("shard-a", "shard-b"):
        writer = TableWriter(root, TableEntry(name="t", model="m", pretrained="p", preprocess="x", dim=dim))
        idx = np.arange(30) + (30 if shard == "shard-b" else 0)
        X = centres[idx % 3] + rng.normal(size=(30, dim))
        rows = [{"key": f"k{i:02d}", "shard": shard, "style": STYLES[i % 3], "n": int(i)} for i in idx]
        writer.commit(shard, rows, (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), [])
        writer.finish()
    picks = TableWriter(root, TableEntry(name="picks", model="m", pretrained="p", preprocess="x", dim=dim))
    picks.commit("picks", [{"key": f"k{i:02d}", "shard": "picks"} for i in (3, 6, 9, 12, 15, 18)],
                 np.eye(dim, dtype=np.float32)[[0] * 6], [])
    picks.finish()
    outside = tmp_path_factory.mktemp("outside")
    (outside / "keys.csv").write_text("key\nk01\nk02\n")
    pq.write_table(pa.table({"key": ["k01", "k02"]}), outside / "keys.parquet")
    return root, outside


def test_one_expression_only():
    assert check_filter("  style = 'Baroque' ") == "style = 'Baroque'"
    assert check_filter("shard LIKE '%a%' -- a comment") == "shard LIKE '%a%' -- a comment"
    for bad in ("a > 1; SELECT 1", INJECTION.format(target="/tmp/x.csv"), "true) OR (1 = 1", "x AS y",
                "n = 1;", "n = 1 ORDER BY n", "'unterminated", "", "   ", "COPY t TO '/tmp/x.csv'"):
        with pytest.raises(FilterError, match="must be one SQL expression over the table's columns"):
            check_filter(bad)


def test_injection_is_refused_by_the_python_api_and_writes_nothing(art, tmp_path):
    root, _ = art
    target = tmp_path / "pwn.csv"
    with store.open(root) as s:
        with pytest.raises(FilterError, match="`where` must be one SQL expression") as info:
            s.neighbors("t", key="k00", k=3, where=INJECTION.format(target=target))
        assert info.value.argument == "where" and "\n" not in str(info.value)
    with pytest.raises(FilterError):
        artlens.neighbors(root, "t", key="k00", k=3, where=INJECTION.format(target=target))
    assert not target.exists()


def test_injection_is_refused_by_the_neighbors_cli(art, capsys):
    root, _ = art
    literal = INJECTION.format(target="/tmp/pwn.csv")  # the exact string of the issue
    existed = Path("/tmp/pwn.csv").exists()
    assert main(["neighbors", "--store", str(root), "--table", "t", "--key", "k00", "--where", literal]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("artlens neighbors: error: --where must be one SQL expression") and "\n" not in err
    assert captured.out == ""  # no results printed as if all were well
    assert existed or not Path("/tmp/pwn.csv").exists()


@pytest.mark.parametrize("where", [
    "key IN (SELECT key FROM read_csv('{outside}/keys.csv'))",
    "key IN (SELECT key FROM read_parquet('{outside}/keys.parquet'))",
    "length(key) < (SELECT length(content) FROM read_text('/etc/hostname'))",
    "key IN (SELECT file FROM glob('/etc/*'))",
])
def test_subqueries_cannot_read_other_files(art, where, capsys):
    root, outside = art
    text = where.format(outside=outside)
    with store.open(root) as s:
        with pytest.raises(FilterError, match=r"may read only the store's own tables .*not other files"):
            s.neighbors("t", key="k00", k=3, where=text)
        with pytest.raises(FilterError, match="may read only the store's own tables"):
            select_rows(s, "t", "key", text)
        # the store's own connection is untouched: `artlens sql` stays a full SQL console
        assert s.sql(f"SELECT count(*) AS n FROM read_csv('{outside}/keys.csv')").column("n")[0].as_py() == 2
    assert main(["neighbors", "--store", str(root), "--table", "t", "--key", "k00", "--where", text]) == 2
    err = capsys.readouterr().err.strip()
    assert "--where may read only the store's own tables" in err and "\n" not in err


def test_legitimate_filters_still_work(art):
    root, _ = art
    with store.open(root) as s:
        baroque = s.neighbors("t", key="k00", k=5, where="style = 'Baroque'")
        assert baroque.num_rows == 5 and set(baroque.column("style").to_pylist()) == {"Baroque"}
        picked = s.neighbors("t", key="k00", k=10, where="key IN (SELECT key FROM picks)")
        assert sorted(picked.column("key").to_pylist()) == ["k03", "k06", "k09", "k12", "k15", "k18"]
        shard_b = s.neighbors("t", key="k00", k=4, where="shard LIKE '%b%'")
        assert set(shard_b.column("shard").to_pylist()) == {"shard-b"}
        named = s.neighbors("t", key="k00", k=60, where="key IN (SELECT key FROM t WHERE n < 10) AND n > 2")
        assert sorted(named.column("key").to_pylist()) == [f"k{i:02d}" for i in range(3, 10)]
        cos = s.neighbors("t", key="k00", k=3, where="cosine(embedding, embedding) > 0.99")
        assert cos.num_rows == 3
        with pytest.raises(FilterError, match="does not apply to table 't'.*stylee"):
            s.neighbors("t", key="k00", k=3, where="stylee = 'x'")


def test_suite_where_injection_is_refused_before_any_work(art, tmp_path, capsys):
    root, _ = art
    target = tmp_path / "pwn.csv"
    with store.open(root) as s:
        before = len(s.results())
    suite = tmp_path / "suite.yaml"
    where = INJECTION.format(target=target).replace('"', '\\"')
    suite.write_text(f'probes:\n  - {{probe: linear, table: t, label: style, n_boot: 50}}\n'
                     f'  - {{probe: linear, table: t, label: style, n_boot: 50, where: "{where}"}}\n')
    assert main(["probe", "run", str(suite), "--store", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "probes[1] (linear): where: must be one SQL expression" in err and "\n" not in err
    assert not target.exists()
    with store.open(root) as s:
        assert len(s.results()) == before  # the valid first probe did not run either
    assert main(["probe", "linear", "--store", str(root), "--table", "t", "--label", "style",
                 "--n-boot", "50", "--where", INJECTION.format(target=target)]) == 2
    assert "--where must be one SQL expression" in capsys.readouterr().err
    assert not target.exists()


def test_suite_where_filters_rows(art, tmp_path, capsys):
    root, _ = art
    suite = tmp_path / "suite.yaml"
    suite.write_text("probes:\n  - {probe: linear, table: t, label: style, n_boot: 50, "
                     "where: \"style <> 'Ukiyo-e' AND key NOT IN (SELECT key FROM picks)\"}\n")
    assert main(["probe", "run", str(suite), "--store", str(root)]) == 0
    # 40 rows of two styles, less the 6 picks (k03 … k18, all Baroque)
    assert "linear on t (n=34)" in capsys.readouterr().out


def test_a_store_at_a_url_is_locked_to_its_local_mirror(art, tmp_path, monkeypatch):
    """A store at an fsspec URL (here fsspec's in-process memory filesystem) is read from its local mirror:
    filters may read the mirror's tables, not the original folder nor any other file."""
    import fsspec

    root, outside = art
    monkeypatch.setenv("ARTLENS_CACHE", str(tmp_path / "cache"))
    url = f"memory://artlens-filters-{tmp_path.name}/store"
    fs, base = fsspec.core.url_to_fs(url)
    for path in root.rglob("*"):
        if path.is_file():
            fs.pipe(f"{base}/{path.relative_to(root).as_posix()}", path.read_bytes())
    with store.open(url) as s:
        assert str(s.layout.root).startswith(str(tmp_path / "cache"))
        picked = s.neighbors("t", key="k00", k=10, where="key IN (SELECT key FROM picks)")
        assert picked.num_rows == 6
        for text in (f"key IN (SELECT key FROM read_csv('{outside}/keys.csv'))",
                     f"key IN (SELECT key FROM read_parquet('{root}/tables/t/*.parquet'))"):
            with pytest.raises(FilterError, match=f"may read only the store's own tables \\({s.layout.root}\\)"):
                s.neighbors("t", key="k00", k=3, where=text)
