"""`artlens dedup` on real stores, DuckDB and FAISS: planted near-duplicate groups are found exactly (by exact
search and through an index), single linkage chains, the groups are a key table `<T>_dups` whose `dup_group`
T's own view carries (so probes split by it), re-runs replace the groups, and what dedup refuses."""
from __future__ import annotations

import json

import numpy as np
import pytest

from artlens import store
from artlens.cli.main import main
from artlens.errors import UserError
from artlens.pipeline.dedup import DedupConfig, run_dedup
from artlens.store.catalog import TableEntry
from artlens.store.index import build_index
from artlens.store.writer import TableWriter

DIM = 24
#: row numbers of the planted groups (each a base row and copies of it with cosine > 0.99)
PLANTED = ((3, 17, 40), (8, 9), (60, 61, 62, 90))


def _unit(X):
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def _table(root, name="art", n=120, keys=None, planted=PLANTED, extra=None, seed=0, noise=()):
    """A table of n random unit vectors (near-orthogonal at DIM 24: cosine rarely above 0.7) with the
    planted groups; returns {group: set of keys}."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, DIM))
    for g, members in enumerate(planted):
        for m in members[1:]:
            X[m] = X[members[0]] + (noise[g] if g < len(noise) else 0.03) * rng.normal(size=DIM)
    X = _unit(X)
    keys = keys or [f"k{i:03d}" for i in range(n)]
    rows = [{"key": keys[i], "shard": "syn", "style": f"s{i % 3}", **(extra or {})} for i in range(n)]
    writer = TableWriter(root, TableEntry(name=name, model="m", pretrained="p", preprocess="x", dim=DIM))
    writer.commit("syn", rows, X, [])
    writer.finish()
    return X, [{keys[m] for m in members} for members in planted]


def _groups(root, table="art"):
    with store.open(root) as s:
        rows = s.sql(f'SELECT key, dup_group FROM "{table}"').to_pylist()
    by = {}
    for r in rows:
        by.setdefault(r["dup_group"], set()).add(r["key"])
    return by


def test_planted_groups_are_found_exactly_and_t_carries_dup_group(tmp_path):
    X, planted = _table(tmp_path)
    summary = run_dedup(DedupConfig(store=tmp_path, table="art", threshold=0.95, progress=False))
    assert (summary.groups, summary.rows_in_groups, summary.largest) == (3, 9, 4)
    assert summary.pairs == 3 + 1 + 6 and summary.method == "exact"
    groups = _groups(tmp_path)
    assert sorted(map(sorted, (g for g in groups.values() if len(g) > 1))) == sorted(map(sorted, planted))
    assert all(gid == min(members) for gid, members in groups.items())          # the smallest key names it
    with store.open(tmp_path) as s:
        dups = {r["key"]: r for r in s.sql("SELECT * FROM art_dups").to_pylist()}
        assert len(dups) == 120 and s.sql("SELECT count(*) AS n FROM art").column("n")[0].as_py() == 120
        entry = s.entry("art_dups")
        assert (entry.kind, entry.parent, entry.dim, entry.rows) == ("duplicates", "art", 0, 120)
        assert json.loads(entry.source)["threshold"] == 0.95
        assert s.sql("SELECT count(*) AS n FROM art WHERE dup_group IS NULL").column("n")[0].as_py() == 0
    planted_keys = set().union(*planted)
    for key, row in dups.items():
        if key in planted_keys:
            members = next(g for g in planted if key in g)
            best = max(float(X[int(key[1:])] @ X[int(o[1:])]) for o in members if o != key)
            assert row["score"] == pytest.approx(best, abs=1e-5) and row["score"] >= 0.95
        else:
            assert row["score"] is None and row["dup_group"] == key


def test_chains_join_rows_less_similar_than_the_threshold_and_the_summary_says_so(tmp_path):
    rng = np.random.default_rng(1)
    a, d = _unit(rng.normal(size=(2, DIM)))
    b = _unit((a + 0.45 * d)[None])[0]        # a~b and b~c above 0.9, a~c below it
    c = _unit((a + 0.9 * d)[None])[0]
    X = np.vstack([a, b, c, _unit(rng.normal(size=(5, DIM)))])
    sims = X[:3] @ X[:3].T
    assert sims[0, 1] >= 0.9 and sims[1, 2] >= 0.9 and sims[0, 2] < 0.9
    rows = [{"key": k, "shard": "s"} for k in ["a", "b", "c", "x1", "x2", "x3", "x4", "x5"]]
    writer = TableWriter(tmp_path, TableEntry(name="t", model="m", dim=DIM))
    writer.commit("s", rows, X, [])
    writer.finish()
    summary = run_dedup(DedupConfig(store=tmp_path, table="t", threshold=0.9, progress=False))
    assert (summary.groups, summary.largest, summary.pairs, summary.largest_group) == (1, 3, 2, "a")
    assert summary.min_similarity == pytest.approx(float(sims[0, 2]), abs=1e-5) and summary.min_similarity < 0.9
    assert _groups(tmp_path, "t")["a"] == {"a", "b", "c"}
    assert any("single-linkage" in line and f"{sims[0, 2]:.4f}" in line for line in summary.lines())


@pytest.mark.parametrize("kind", ["IVF4,Flat", "hnsw"])
def test_the_index_path_finds_the_groups_exact_search_finds(tmp_path, kind):
    _table(tmp_path, n=400)
    run_dedup(DedupConfig(store=tmp_path, table="art", method="exact", progress=False))
    exact = _groups(tmp_path)
    build_index(tmp_path, "art", kind=kind, progress=False)
    summary = run_dedup(DedupConfig(store=tmp_path, table="art", method="index", progress=False))
    assert summary.method == "index" and "range search" in summary.search
    assert _groups(tmp_path) == exact and summary.groups == 3
    auto = run_dedup(DedupConfig(store=tmp_path, table="art", exact_below=10, progress=False))
    assert auto.method == "index" and _groups(tmp_path) == exact


def test_the_knn_fallback_of_an_index_without_range_search_finds_the_groups(tmp_path):
    from artlens.pipeline import dedup

    _table(tmp_path)
    build_index(tmp_path, "art", kind="flat", progress=False)
    with store.open(tmp_path) as s:
        loaded = s.index("art")
        keys = np.asarray(s.sql("SELECT key FROM art ORDER BY key").column("key").to_pylist(), dtype=object)
        X = _unit(np.asarray(s.sql("SELECT embedding FROM art ORDER BY key").column(0).to_pylist(), np.float32))

    class NoRange:  # a FAISS index type without range search (FAISS raises RuntimeError for those)
        def __init__(self, index):
            self.index, self.ntotal = index, index.ntotal

        def range_search(self, *_):
            raise RuntimeError("range search not implemented for this type of index")

        def search(self, q, k):
            return self.index.search(q, k)

    loaded.index = NoRange(loaded.index)
    (i, j, sims), how = dedup._index_pairs(loaded, keys, X, DedupConfig(store=tmp_path, table="art",
                                                                        progress=False), "t")
    assert "nearest of each row" in how and len(i) == 10 and (sims >= 0.95).all()


def test_a_rerun_with_another_threshold_replaces_the_groups(tmp_path):
    X, _ = _table(tmp_path, planted=((3, 17, 40), (8, 9)), noise=(0.03, 0.25))
    sims = X @ X.T
    assert min(sims[3, 17], sims[3, 40], sims[17, 40]) > 0.99 > sims[8, 9] > 0.95
    first = run_dedup(DedupConfig(store=tmp_path, table="art", threshold=0.95, progress=False))
    reader = store.open(tmp_path)   # opened before the re-run: its views read the replaced part
    count = 'SELECT count(DISTINCT dup_group) AS n FROM art'
    assert reader.sql(count).column("n")[0].as_py() == 120 - 3
    second = run_dedup(DedupConfig(store=tmp_path, table="art", threshold=0.99, progress=False))
    assert reader.sql(count).column("n")[0].as_py() == 120 - 2
    reader.close()
    assert first.groups == 2 and second.groups == 1 and second.pairs == 3
    assert [g for g in _groups(tmp_path).values() if len(g) > 1] == [{"k003", "k017", "k040"}]
    with store.open(tmp_path) as s:
        assert json.loads(s.entry("art_dups").source)["threshold"] == 0.99
        assert s.sql("SELECT count(*) AS n FROM art_dups").column("n")[0].as_py() == 120
    assert [p.name for p in (tmp_path / "tables" / "art_dups").iterdir()] == ["part-all.parquet"]


def test_hostile_keys_survive(tmp_path):
    keys = [f"k{i:03d}" for i in range(30)]
    keys[3], keys[17], keys[8], keys[9] = "O'Keeffe \"copy\"", "Ærø; DROP TABLE art; --", "名画", "名画 (copie)"
    _table(tmp_path, n=30, keys=keys, planted=((3, 17), (8, 9)))
    run_dedup(DedupConfig(store=tmp_path, table="art", progress=False))
    groups = _groups(tmp_path)
    assert groups[min(keys[3], keys[17])] == {keys[3], keys[17]} and groups["名画"] == {"名画", "名画 (copie)"}


def test_a_probe_sees_dup_group_through_load_rows_and_splits_by_it(tmp_path):
    from artlens.probes import knn
    from artlens.probes.data import load_rows

    _table(tmp_path)
    with store.open(tmp_path) as s:
        assert "dup_group" not in load_rows(s, "art", [], optional=["dup_group"]).columns
    run_dedup(DedupConfig(store=tmp_path, table="art", progress=False))
    with store.open(tmp_path) as s:
        rows = load_rows(s, "art", [], optional=["dup_group"])
        assert list(rows.columns["dup_group"][[3, 17, 40]]) == ["k003"] * 3
        filtered = load_rows(s, "art", ["dup_group"], where="style = 's0'")  # the locked connection too
        by_key = dict(zip(filtered.keys, filtered.columns["dup_group"]))
        assert len(by_key) == 40 and by_key["k090"] == "k060" and by_key["k003"] == "k003"
        result = knn.run(s, knn.Config(table="art", labels=("style",), group=("dup_group",), n_boot=50))
    assert result.n == 120
    assert result.details.get("straddling_duplicates", 0) == 0  # reported once the probes count them


def test_dedup_refuses_what_it_cannot_group(tmp_path):
    _table(tmp_path)
    for threshold in (0, 1.5, -0.2, float("nan"), "x", True):
        with pytest.raises(UserError, match="threshold must be a cosine similarity in"):
            DedupConfig(store=tmp_path, table="art", threshold=threshold)
    with pytest.raises(UserError, match="no table 'nope'"):
        run_dedup(DedupConfig(store=tmp_path, table="nope", progress=False))
    with pytest.raises(UserError, match="has no FAISS index"):
        run_dedup(DedupConfig(store=tmp_path, table="art", method="index", progress=False))
    linked = TableWriter(tmp_path, TableEntry(name="art_deformed", kind="deformation", parent="art", dim=DIM))
    linked.commit("s", [{"key": "k000", "shard": "s"}] * 2, _unit(np.ones((2, DIM))), [])
    linked.finish()
    with pytest.raises(UserError, match="several rows each"):
        run_dedup(DedupConfig(store=tmp_path, table="art_deformed", progress=False))
    run_dedup(DedupConfig(store=tmp_path, table="art", progress=False))
    with pytest.raises(UserError, match="without embeddings"):
        run_dedup(DedupConfig(store=tmp_path, table="art_dups", progress=False))
    with store.open(tmp_path) as s, pytest.raises(UserError, match="without embeddings"):
        s.neighbors("art_dups", key="k000")


@pytest.mark.parametrize("column", ["dup_group", "Dup_Group"])
def test_a_table_with_its_own_dup_group_column_is_refused(tmp_path, column):
    _table(tmp_path, extra={column: "mine"})
    with pytest.raises(UserError, match="column 'dup_group' of its own"):
        run_dedup(DedupConfig(store=tmp_path, table="art", progress=False))
    assert not (tmp_path / "tables" / "art_dups").exists()


def test_a_user_table_named_like_the_output_is_not_replaced(tmp_path):
    _table(tmp_path)
    _table(tmp_path, name="art_dups")
    with pytest.raises(UserError, match="is not the near-duplicate groups of 'art'"):
        run_dedup(DedupConfig(store=tmp_path, table="art", progress=False))


def test_rows_added_after_dedup_are_their_own_group_with_a_warning(tmp_path):
    from artlens.store.query import StoreWarning

    X, _ = _table(tmp_path)
    run_dedup(DedupConfig(store=tmp_path, table="art", progress=False))
    writer = TableWriter.reopen(tmp_path, "art")
    writer.commit("more", [{"key": "new", "shard": "more"}], X[3:4], [])
    writer.finish()
    with pytest.warns(StoreWarning, match="rows added since are each their own group"), store.open(tmp_path) as s:
        got = s.sql("SELECT dup_group FROM art WHERE key = 'new'").column(0).to_pylist()
    assert got == ["new"]


def test_the_cli_prints_the_counts_and_refuses_bad_thresholds(tmp_path, capsys):
    _table(tmp_path)
    assert main(["dedup", "--store", str(tmp_path), "--table", "art", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "3 near-duplicate groups (cosine >= 0.95) holding 9 of 120 rows, 10 pairs" in out
    assert "largest group: 4 rows (dup_group 'k060')" in out
    assert main(["dedup", "--store", str(tmp_path), "--table", "art", "--format", "json", "--no-progress",
                 "--threshold", "0.9"]) == 0
    counts = json.loads(capsys.readouterr().out)
    assert (counts["groups"], counts["threshold"], counts["output"]) == (3, 0.9, "art_dups")
    assert main(["dedup", "--store", str(tmp_path), "--table", "art", "--threshold", "1.5"]) == 2
    assert "--threshold must be a cosine similarity in (0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["dedup", "--store", str(tmp_path), "--table", "art", "--threshold", "x"])
    assert exit_.value.code == 2
    assert main(["dedup", "--store", str(tmp_path), "--table", "nope"]) == 2
    assert main(["sql", "--store", str(tmp_path), 'SELECT count(*) FROM "art_dups"', "--format", "csv"]) == 0
    assert "120" in capsys.readouterr().out


def test_repair_rebuilds_the_groups_entry_from_its_part(tmp_path):
    from artlens.store.repair import repair

    _table(tmp_path)
    run_dedup(DedupConfig(store=tmp_path, table="art", threshold=0.97, progress=False))
    before = _groups(tmp_path)
    (tmp_path / "catalog.duckdb").unlink()
    repair(str(tmp_path))
    with store.open(tmp_path) as s:
        entry = s.entry("art_dups")
        assert (entry.kind, entry.parent, entry.dim, entry.rows) == ("duplicates", "art", 0, 120)
        assert json.loads(entry.source)["threshold"] == 0.97
    assert _groups(tmp_path) == before
