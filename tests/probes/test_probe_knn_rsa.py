"""`knn` and `rsa` probes on synthetic tables whose answer is known, and on the real AI-Pastiche embeddings.

The synthetic table: 60 prompts × 4 near-duplicate images (240 rows, 32-d). The embedding is driven by
`style` (4 centres, constant within a prompt) and a numeric `score`; `subject` is random per row, `dup` is
random per prompt (so only near-duplicates share it), `shuffled` is `style` permuted across rows.
"""
import numpy as np
import pytest
from scipy.stats import spearmanr

from artlens import store
from artlens.probes import knn, rsa
from artlens.probes.data import ProbeDataError
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter

N_PROMPTS, COPIES, DIM = 60, 4, 32
N = N_PROMPTS * COPIES


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    root = tmp_path_factory.mktemp("knn-rsa-store")
    rng = np.random.default_rng(1)
    prompt = np.repeat(np.arange(N_PROMPTS), COPIES)
    style = prompt % 4
    dup = rng.integers(0, 3, N_PROMPTS)[prompt]
    score = rng.uniform(0, 1, N)
    centres, direction = rng.normal(size=(4, DIM)), rng.normal(size=DIM)
    X = (centres[style] + 0.6 * rng.normal(size=(N_PROMPTS, DIM))[prompt] + 0.1 * rng.normal(size=(N, DIM))
         + 6 * score[:, None] * direction / np.linalg.norm(direction))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    shuffled = rng.permutation(style)
    rows = [{"key": f"k{i:03d}", "shard": "syn", "style": f"s{style[i]}", "subject": f"t{rng.integers(0, 3)}",
             "dup": f"d{dup[i]}", "prompt": f"p{prompt[i]:02d}", "shuffled": f"s{shuffled[i]}",
             "score": float(score[i]), "const": "same", "sparse": None if i < 40 else f"s{style[i]}",
             "rare": "lonely" if i == 0 else f"s{style[i]}", "idx": i} for i in range(N)]
    writer = TableWriter(root, TableEntry(name="art", model="m", pretrained="p", preprocess="x", dim=DIM))
    writer.commit("syn", rows, X, [])
    writer.finish()
    with store.open(root) as s:
        yield s


def _knn(s, **options):
    return knn.run(s, knn.Config.from_dict({"table": "art", "n_boot": 100, **options}))


def _rsa(s, **options):
    return rsa.run(s, rsa.Config.from_dict({"table": "art", "n_boot": 200, "permutations": 199, **options}))


# ------------------------------------------------------------------------------------------------ knn
def test_knn_groups_by_style_not_subject(synthetic):
    r = _knn(synthetic, labels=["subject", "style"])
    lift = r.details["lift"]
    assert r.details["ranking"] == ["style", "subject"] and r.details["ranking_kappa"][0] == "style"
    assert lift["style"] > 3 and 0.7 < lift["subject"] < 1.3
    assert r.metrics["style.knn_accuracy"].value > 0.9 and r.metrics["style.knn_accuracy"].ci[0] > 0.85
    assert r.baseline["style.knn_accuracy"] == pytest.approx(0.25)
    # random neighbours: sum_c n_c (n_c - 1) / (n (n - 1)) with four classes of 60
    assert r.baseline["style.purity"] == pytest.approx(4 * 60 * 59 / (N * (N - 1)), abs=1e-12)
    lo, hi = r.metrics["subject.purity"].ci
    assert lo <= r.baseline["subject.purity"] + 0.05 and hi > r.baseline["subject.purity"] - 0.05
    assert {c: v["support"] for c, v in r.per_class["style"].items()} == {f"s{i}": 60 for i in range(4)}
    assert r.details["labels"]["style"]["kappa"] > 0.7 > 0.1 > abs(r.details["labels"]["subject"]["kappa"])


def test_knn_group_exclusion_removes_near_duplicate_credit(synthetic):
    free = _knn(synthetic, label="dup", k=3)
    grouped = _knn(synthetic, labels=["dup", "style"], k=3, group="prompt")
    assert free.metrics["dup.purity"].value > 0.9 and free.details["lift"]["dup"] > 2.5
    assert grouped.details["lift"]["dup"] < 1.4 and grouped.metrics["dup.knn_accuracy"].value < 0.6
    assert grouped.details["lift"]["style"] > 3, "real structure survives excluding the query's own prompt"
    assert grouped.details["ranking"] == ["style", "dup"]
    assert (grouped.details["grouped_by"], grouped.details["n_groups"]) == (["prompt"], N_PROMPTS)
    # the random-neighbour baseline counts only rows of other prompts: mean of (n_c - 4) / (n - 4)
    dup = np.array(synthetic.sql("SELECT dup FROM art ORDER BY key").column(0).to_pylist())
    sizes = {c: (dup == c).sum() for c in set(dup)}
    expected = np.mean([(sizes[c] - COPIES) / (N - COPIES) for c in dup])
    assert grouped.baseline["dup.purity"] == pytest.approx(expected, abs=1e-12)


def test_knn_neighbours_are_exact_and_votes_break_ties(monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 8))
    groups = np.arange(50) // 2
    monkeypatch.setattr(knn, "BLOCK", 7)  # several blocks
    idx, sim = knn.neighbours(X, groups, 5)
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = Xn @ Xn.T
    S[groups[:, None] == groups[None, :]] = -np.inf
    assert np.array_equal(idx, np.argsort(-S, axis=1, kind="stable")[:, :5])
    assert np.allclose(sim, np.take_along_axis(S, idx, axis=1))
    y = np.array([0, 0, 1, 1, 1])
    nbr = np.array([[1, 2, 3, 4], [0, 2, 3, -1], [3, 4, 0, 1], [2, 4, 0, 1], [0, 1, 2, 3]])
    s = np.array([[0.9, 0.1, 0.1, 0.05], [0.2, 0.5, 0.4, -np.inf], [0.3, 0.3, 0.3, 0.3],
                  [0.2, 0.2, 0.5, 0.5], [0.4, 0.4, 0.1, 0.1]])
    pred, purity, has = knn.vote(y, nbr, s, 2)
    # row 0: 1 vote for 0 vs 3 for 1; row 1: 2 votes for 1; rows 2-4: 2-2 ties → larger summed similarity,
    # then the first class (row 2: equal sums)
    assert pred.tolist() == [1, 1, 0, 0, 0]
    assert purity.tolist() == [0.25, 1 / 3, 0.5, 0.5, 0.5] and has.all()


def test_knn_missing_values_and_rare_classes(synthetic):
    r = _knn(synthetic, labels=["sparse", "rare"])
    assert r.n == N
    assert r.details["labels"]["sparse"]["n"] == N - 40 and r.details["labels"]["sparse"]["rows_without_label"] == 40
    assert r.details["labels"]["rare"]["dropped_classes"] == {"lonely": 1} and r.details["labels"]["rare"]["n"] == N - 1
    exact = _knn(synthetic, labels=["rare"], min_count=59)  # s0 has exactly 59 rows (row 0 is `lonely`): kept
    assert exact.details["labels"]["rare"]["dropped_classes"] == {"lonely": 1}


def test_knn_errors(synthetic):
    with pytest.raises(ProbeDataError, match="no_such"):
        _knn(synthetic, labels=["no_such"])
    with pytest.raises(ProbeDataError, match="class"):
        _knn(synthetic, label="const")
    with pytest.raises(ProbeDataError, match="k=10"):
        _knn(synthetic, label="style", where="idx < 8")
    with pytest.raises(ValueError, match="labels"):
        _knn(synthetic)
    with pytest.raises(ValueError, match="k >= 1"):
        _knn(synthetic, label="style", k=0)


# ------------------------------------------------------------------------------------------------ rsa
def test_rsa_finds_a_driving_label_and_not_a_shuffled_one(synthetic):
    driven, shuffled = _rsa(synthetic, label="style"), _rsa(synthetic, label="shuffled")
    rho, ci = driven.metrics["spearman_rho"].value, driven.metrics["spearman_rho"].ci
    assert rho > 0.2 and ci[0] > 0.1 and driven.details["p_value"] < 0.05
    assert driven.details["p_value"] == pytest.approx(1 / 200) and rho > driven.details["null_q95"]
    assert driven.baseline == {"spearman_rho": 0.0} and driven.details["metric"] == "categorical"
    null_rho = shuffled.metrics["spearman_rho"]
    assert abs(null_rho.value) < 0.05 and shuffled.details["p_value"] > 0.05
    assert null_rho.ci[0] < 0 < null_rho.ci[1]
    within = [c["within"] for c in driven.per_class.values()]
    between = [c["between"] for c in driven.per_class.values()]
    assert max(within) < min(between)


def test_rsa_numeric_label_uses_absolute_differences(synthetic):
    r = _rsa(synthetic, label="score")
    assert r.details["metric"] == "absolute" and r.metrics["spearman_rho"].value > 0.1
    assert r.details["p_value"] < 0.05
    with pytest.raises(ProbeDataError, match="same distance"):  # as categories, every score is its own class
        _rsa(synthetic, label="score", metric="categorical")


def test_rsa_statistic_null_and_bootstrap_are_exact():
    """rho = scipy's Spearman; a Mantel null value = Spearman after permuting labels; a bootstrap value =
    Spearman over the induced sub-matrix of the resampled rows (copies of one row not paired)."""
    rng = np.random.default_rng(5)
    n = 30
    X, y = rng.normal(size=(n, 6)), rng.integers(0, 3, n)
    D = 1 - (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (X / np.linalg.norm(X, axis=1, keepdims=True)).T
    i0, i1 = np.triu_indices(n, 1)
    d, lab = D[i0, i1], (y[i0] != y[i1]).astype(float)
    dt, lt = np.unique(d, return_inverse=True)[1], np.unique(lab, return_inverse=True)[1]
    ones = np.ones(len(d))
    rho = rsa.weighted_spearman(dt, dt.max() + 1, lt, lt.max() + 1, ones)
    assert rho == pytest.approx(spearmanr(d, lab).statistic, abs=1e-12)
    null = rsa.mantel_null(rsa._mid_ranks(dt, dt.max() + 1, ones), rsa._mid_ranks(lt, 2, ones), (i0, i1), n, 3, 9)
    p = np.random.default_rng([9, 1]).permutation(n)
    assert null[0] == pytest.approx(spearmanr(d, (y[p][i0] != y[p][i1])).statistic, abs=1e-9)
    idx = rng.integers(0, n, n)
    w = np.bincount(idx, minlength=n).astype(float)
    a, b = np.triu_indices(n, 1)
    real = idx[a] != idx[b]
    expected = spearmanr(D[idx[a], idx[b]][real], (y[idx[a]] != y[idx[b]])[real]).statistic
    assert rsa.weighted_spearman(dt, dt.max() + 1, lt, 2, w[i0] * w[i1]) == pytest.approx(expected, abs=1e-12)


def test_rsa_subsample_and_errors(synthetic):
    small = _rsa(synthetic, label="style", max_rows=100, seed=4)
    assert small.n == 100 and small.details["subsampled"] and small.details["rows_total"] == N
    assert small.to_dict() == _rsa(synthetic, label="style", max_rows=100, seed=4).to_dict()
    with pytest.raises(ProbeDataError, match="no_such"):
        _rsa(synthetic, label="no_such")
    with pytest.raises(ProbeDataError, match="distinct"):
        _rsa(synthetic, label="const")
    with pytest.raises(ProbeDataError, match="need at least 4"):
        _rsa(synthetic, label="style", where="idx < 3")
    with pytest.raises(ValueError, match="numeric"):
        _rsa(synthetic, label="style", metric="absolute")
    with pytest.raises(ValueError, match="unknown metric"):
        _rsa(synthetic, label="style", metric="euclid")


# ---------------------------------------------------------------------------------- real AI-Pastiche
@pytest.fixture(scope="module")
def pastiche(shared_store):
    with store.open(shared_store) as s:
        yield s


def test_real_ai_pastiche_groups_by_style_beyond_near_duplicates(pastiche):
    """Measured (seed 0): style lift 8.6 free, 4.0 with a prompt's own images excluded; generator lift 1.1
    free (12 images of a prompt crowd out the generator signal) but 2.4 once a prompt's images are excluded;
    RSA style rho 0.24, p = 1/(permutations+1)."""
    options = {"table": "ai_pastiche", "labels": ["style", "generative_model"], "n_boot": 100}
    free = knn.run(pastiche, knn.Config.from_dict(options))
    grouped = knn.run(pastiche, knn.Config.from_dict({**options, "group": "prompt"}))
    assert free.n == 953 and free.details["ranking"] == ["style", "generative_model"]
    assert free.details["lift"]["style"] > 5 and free.metrics["style.purity"].ci[0] > 0.8
    assert free.details["lift"]["generative_model"] < 1.5
    assert grouped.details["lift"]["style"] > 2.5 and grouped.metrics["style.purity"].ci[0] > grouped.baseline[
        "style.purity"]
    assert grouped.metrics["style.purity"].value < free.metrics["style.purity"].value - 0.3
    assert grouped.details["lift"]["generative_model"] > 1.5
    r = rsa.run(pastiche, rsa.Config(table="ai_pastiche", label="style", permutations=199, n_boot=100))
    assert 0.15 < r.metrics["spearman_rho"].ci[0] and r.details["p_value"] == pytest.approx(1 / 200)
    assert r.details["null_q95"] < 0.05


# ------------------------------------------------------------------- groups of several columns, grouped rsa
G, PER = 24, 10         # the near-duplicate table: 24 groups of 10 near-identical rows
UNEVEN = [*range(1, 21), 30]   # group sizes no two groups share (sum 240)


@pytest.fixture(scope="module")
def near_dups(tmp_path_factory):
    """`grp`'s rows are near-identical; `prompt` splits each group in two (rows 0-4, 5-9) and `link` joins the
    halves through rows 4 and 5 only (every other row has a `link` of its own), so `prompt` + `link` is `grp`.
    `dup` is random per group (tied to the embedding only through near-duplicates), `style` is random per
    group and drives the embedding across groups, `score` is random per row, `uneven` groups by UNEVEN sizes."""
    root = tmp_path_factory.mktemp("near-dup-store")
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(G), PER)
    pos = np.tile(np.arange(PER), G)
    style, dup = rng.permutation(np.arange(G) % 4)[g], rng.integers(0, 4, G)[g]
    X = 2 * rng.normal(size=(4, DIM))[style] + rng.normal(size=(G, DIM))[g] + 0.01 * rng.normal(size=(G * PER, DIM))
    uneven = np.repeat(np.arange(len(UNEVEN)), UNEVEN)
    rows = [{"key": f"k{i:03d}", "shard": "syn", "grp": f"g{g[i]:02d}", "prompt": f"p{g[i]:02d}{int(pos[i] >= 5)}",
             "link": f"l{g[i]:02d}" if pos[i] in (4, 5) else f"u{i}", "dup": f"d{dup[i]}", "style": f"s{style[i]}",
             "score": float(rng.uniform()), "uneven": f"e{uneven[i]:02d}"} for i in range(G * PER)]
    writer = TableWriter(root, TableEntry(name="dups", model="m", pretrained="p", preprocess="x", dim=DIM))
    writer.commit("syn", rows, (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), [])
    writer.finish()
    with store.open(root) as s:
        yield s


def test_knn_with_two_group_columns_excludes_a_neighbour_linked_only_through_the_second(near_dups):
    run = lambda group: knn.run(near_dups, knn.Config.from_dict(  # noqa: E731
        {"table": "dups", "labels": ["dup"], "k": 2, "n_boot": 100, "group": group}))
    by_prompt, both = run(["prompt"]), run(["prompt", "link"])
    assert by_prompt.details["n_groups"] == 2 * G and both.details["n_groups"] == G
    assert both.details["grouped_by"] == ["prompt", "link"]
    # by prompt alone, rows 0-4 of a group still find rows 5-9 (near-identical, another prompt)
    assert by_prompt.metrics["dup.purity"].value > 0.95
    assert both.metrics["dup.purity"].value < 0.5 and both.details["kappa"]["dup"] < 0.25


def _rsa_dups(s, **options):
    return rsa.run(s, rsa.Config.from_dict({"table": "dups", "n_boot": 200, "permutations": 199, **options}))


def test_rsa_near_duplicates_count_only_without_group(near_dups):
    free, grouped = _rsa_dups(near_dups, label="dup"), _rsa_dups(near_dups, label="dup", group="grp")
    rho = free.metrics["spearman_rho"]
    assert rho.value > 0.05 and rho.ci[0] > 0.03 and free.details["p_value"] < 0.01
    assert free.details["permutation"] == "rows" and free.details["pairs"] == G * PER * (G * PER - 1) // 2
    lo, hi = grouped.metrics["spearman_rho"].ci
    assert lo < 0 < hi and grouped.details["p_value"] > 0.05
    assert grouped.details["permutation"] == "group labels" and grouped.details["n_groups"] == G
    assert grouped.details["within_group_pairs"] == G * PER * (PER - 1) // 2
    assert grouped.details["pairs"] == free.details["pairs"] - grouped.details["within_group_pairs"]
    assert grouped.details["grouped_by"] == ["grp"] and grouped.details["exchangeable_groups"] == G
    # the two group columns that make `grp` give the same groups, hence the same result
    both = _rsa_dups(near_dups, label="dup", group=["prompt", "link"])
    assert both.metrics["spearman_rho"].value == pytest.approx(grouped.metrics["spearman_rho"].value, abs=1e-12)
    assert both.details["p_value"] == grouped.details["p_value"]


def test_rsa_grouped_still_finds_a_label_that_drives_the_embedding_across_groups(near_dups):
    r = _rsa_dups(near_dups, label="style", group="grp")
    assert r.metrics["spearman_rho"].ci[0] > 0.2 and r.details["p_value"] == pytest.approx(1 / 200)
    within = [c["within"] for c in r.per_class.values()]
    assert max(within) < min(c["between"] for c in r.per_class.values())


def test_rsa_label_varying_within_groups_exchanges_equal_size_blocks_or_gives_no_p(near_dups):
    blocks = _rsa_dups(near_dups, label="score", group="grp")
    assert blocks.details["permutation"] == "equal-size blocks" and blocks.details["exchangeable_groups"] == G
    assert blocks.details["groups_with_several_labels"] == G
    assert 0 < blocks.details["p_value"] <= 1 and np.isfinite(blocks.details["null_q95"])
    none = _rsa_dups(near_dups, label="score", group="uneven")
    assert none.details["exchangeable_groups"] == 0 and np.isnan(none.details["p_value"])
    assert "no p-value" in none.details["note"] and np.isfinite(none.metrics["spearman_rho"].value)


def test_rsa_block_permutation_keeps_groups_whole():
    groups = np.array([0, 0, 1, 1, 2, 2, 2, 3, 4, 4, 5, 5, 5])  # sizes 2, 2, 3, 1, 2, 3
    blocks = rsa.exchangeable_blocks(groups)
    assert sorted(b.shape for b in blocks) == [(2, 3), (3, 2)]
    rng = np.random.default_rng(0)
    label = np.array([10, 10, 11, 11, 12, 12, 12, 13, 14, 14, 15, 15, 15])  # constant within groups
    moved = set()
    for _ in range(20):
        p = rsa.block_permutation(blocks, len(groups), rng)
        assert sorted(p) == list(range(len(groups)))
        for g in np.unique(groups):
            rows = np.flatnonzero(groups == g)
            assert len(set(label[p][rows])) == 1                 # still constant within every group
            source = p[rows]
            assert len(set(groups[source])) == 1 and np.all(np.diff(source) == 1)  # one whole group, in order
            moved.add((g, int(groups[source[0]])))
        assert p[7] == 7                                         # the only group of size 1 stays
    assert {(0, 4), (2, 5)} <= moved


def test_rsa_group_label_null_is_spearman_over_between_group_pairs():
    """A group-label null value = scipy's Spearman over the pairs of rows from different groups after
    giving each group the label of the group the permutation sends it."""
    rng = np.random.default_rng(11)
    groups = np.repeat(np.arange(9), [1, 2, 3, 4, 2, 3, 1, 5, 2])
    n, yg = len(groups), rng.uniform(0, 1, 9)
    X = rng.normal(size=(n, 5))
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    D = 1 - Xn @ Xn.T
    i0, i1 = np.triu_indices(n, 1)
    keep = groups[i0] != groups[i1]
    i0, i1 = i0[keep], i1[keep]
    dt = np.unique(D[i0, i1], return_inverse=True)[1]
    rd = rsa._mid_ranks(dt, dt.max() + 1, np.ones(len(i0)))
    for metric in ("absolute", "categorical"):
        y = (yg if metric == "absolute" else (yg > 0.5).astype(float))[groups]
        null = rsa.group_label_null(rd, (i0, i1), groups, y, metric, 3, 4)
        q = np.random.default_rng([4, 1]).permutation(9)
        yp = y[np.unique(groups, return_index=True)[1]][q][groups]
        lab = np.abs(yp[i0] - yp[i1]) if metric == "absolute" else (yp[i0] != yp[i1]).astype(float)
        assert null[0] == pytest.approx(spearmanr(D[i0, i1], lab).statistic, abs=1e-12)


def test_rsa_groups_with_several_labels():
    groups = np.array([0, 0, 1, 1, 1, 2])
    assert rsa.groups_with_several_labels(groups, np.array([1, 1, 2, 2, 2, 1])) == 0
    assert rsa.groups_with_several_labels(groups, np.array([1, 1, 2, 3, 2, 1])) == 1
    assert rsa.groups_with_several_labels(groups, np.array([0.5, 0.7, 2, 3, 2, 1])) == 2
