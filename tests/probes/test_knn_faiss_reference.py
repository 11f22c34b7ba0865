"""The kNN probe's FAISS search (probes/nearest.py) gives the float64 brute force's neighbours and votes.

The reference is the probe's former search, written out here: every row against every row in float64,
the own group masked, a stable sort (ties to the lower row). The table has groups of very unequal sizes
(one bigger than the dense threshold the test sets) and exact duplicate vectors, so ties are exercised.
"""
import numpy as np
import pytest

from artlens import store
from artlens.probes import knn, nearest
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter

N, DIM, K = 300, 16, 7


def reference_neighbours(X: np.ndarray, groups: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    Xn = X.astype(np.float64)
    Xn /= np.linalg.norm(Xn, axis=1, keepdims=True)
    S = Xn @ Xn.T
    S[groups[:, None] == groups[None, :]] = -np.inf
    order = np.argsort(-S, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(S, order, axis=1)
    return np.where(np.isfinite(top), order, -1), top


def _data(seed: int = 5):
    rng = np.random.default_rng(seed)
    style = rng.integers(0, 4, N)
    X = rng.normal(size=(4, DIM))[style] + 0.8 * rng.normal(size=(N, DIM))
    X[10:14] = X[3]           # exact duplicates: ties that must go to the lower row
    X[200:203] = X[150]
    # groups: one of 120 rows, a few of 10, the rest singletons
    groups = np.concatenate([np.zeros(120, int), np.repeat(np.arange(1, 7), 10), np.arange(7, 7 + N - 180)])
    return X.astype(np.float32), style, rng.permutation(groups)


@pytest.fixture(params=["faiss", "dense"])
def path(request, monkeypatch):
    """Both candidate paths: the FAISS search, and (threshold lowered) the dense float32 one for big groups."""
    monkeypatch.setattr(knn, "BLOCK", 64)  # several query blocks
    if request.param == "dense":
        monkeypatch.setattr(nearest, "DENSE_FROM", 50)
    return request.param


def test_neighbours_equal_the_float64_brute_force(path):
    X, _, groups = _data()
    for g in (np.arange(N), groups):
        idx, sim = knn.neighbours(X, g, K)
        ref_idx, ref_sim = reference_neighbours(X, g, K)
        assert np.array_equal(idx, ref_idx)
        assert np.allclose(sim, ref_sim, rtol=0, atol=1e-12)
        if g is not groups:  # copies of one vector are each other's nearest, in row order
            assert idx[3, :4].tolist() == [10, 11, 12, 13] and idx[12, :4].tolist() == [3, 10, 11, 13]


def test_rows_with_fewer_eligible_neighbours_than_k_are_padded():
    X, _, _ = _data()
    groups = np.r_[np.zeros(N - 2, int), [1, 2]]  # rows of group 0 see only the last two rows
    idx, sim = knn.neighbours(X, groups, K)
    assert (idx[N - 3, 2:] == -1).all() and np.isinf(sim[N - 3, 2:]).all()
    assert sorted(idx[N - 3, :2]) == [N - 2, N - 1]
    ref_idx, _ = reference_neighbours(X, groups, K)
    assert np.array_equal(idx, ref_idx)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    X, style, groups = _data(seed=8)
    root = tmp_path_factory.mktemp("knn-faiss-store")
    rows = [{"key": f"r{i:03d}", "shard": "s", "style": f"s{style[i]}", "artist": f"a{groups[i]}"}
            for i in range(N)]
    writer = TableWriter(root, TableEntry(name="art", model="m", pretrained="p", preprocess="x", dim=DIM))
    writer.commit("s", rows, X, [])
    writer.finish()
    with store.open(root) as s:
        yield s, X, style, groups


@pytest.mark.parametrize("group", [None, "artist"])
def test_the_probes_votes_equal_the_brute_force_reference(table, group):
    s, X, style, groups = table
    options = {"table": "art", "labels": ["style"], "k": K, "n_boot": 40, **({"group": group} if group else {})}
    result = knn.run(s, knn.Config.from_dict(options))
    rows = result.rows.to_pydict()
    order = np.argsort(rows["key"])  # the probe's row order is the store's; compare by key
    keys = np.array(rows["key"])[order]
    assert keys.tolist() == [f"r{i:03d}" for i in range(N)]
    g = np.arange(N) if group is None else np.unique(groups, return_inverse=True)[1]
    ref_idx, ref_sim = reference_neighbours(X, g, K)
    pred, purity, has = knn.vote(style, ref_idx, ref_sim, 4)
    assert has.all()
    assert np.array(rows["predicted"])[order].tolist() == [f"s{p}" for p in pred]
    assert np.allclose(np.array(rows["score"])[order], purity)
    assert result.metrics["style.knn_accuracy"].value == pytest.approx(float((pred == style).mean()))
