"""The separability and zero-shot probes on data whose answer is known, and separability on the real
AI-Pastiche vs National Gallery embeddings (skipped without the shared data)."""
import numpy as np
import pytest

from conftest import findings_result

from artlens import store
from artlens.store.compat import IncompatibleError
from artlens.probes import separability, zero_shot
from artlens.probes.data import ProbeDataError
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter

FAST = {"n_boot": 200, "Cs": (1.0, 10.0), "folds": 4, "inner_folds": 2}
CLASSES = ["c0", "c1", "c2", "c3", "c4", "c5"]


def write(root, name, X, columns, kind="image", pretrained="p"):
    n = len(X)
    rows = [{"key": f"{name}{i:04d}", "shard": "syn", **{c: v[i] for c, v in columns.items()}} for i in range(n)]
    entry = TableEntry(name=name, kind=kind, model="m", pretrained=pretrained, preprocess="x", dim=X.shape[1])
    writer = TableWriter(root, entry)
    writer.commit("syn", rows, np.asarray(X, np.float32), [])
    writer.finish()


def two_sets(rng, shift, n=150, dim=8, scale=None):
    """Set A = Gaussian cloud + shift, set B = the same cloud; `source` says which, `grp` splits A in four."""
    scale = np.ones(dim) if scale is None else scale
    X = rng.normal(size=(2 * n, dim)) * scale
    X[:n] += shift
    return X, {"source": ["ai"] * n + ["human"] * n, "grp": [f"g{i % 4}" for i in range(n)] + [None] * n}


@pytest.fixture(scope="module")
def syn_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("sep-zs")
    rng = np.random.default_rng(1)
    write(root, "shifted", *two_sets(rng, np.r_[3.0, np.zeros(7)]))
    write(root, "same", *two_sets(rng, np.zeros(8)))
    write(root, "pcshift", *two_sets(rng, np.r_[4.0, np.zeros(7)], scale=np.r_[2.0, np.ones(7)]))
    X, cols = two_sets(rng, 0.0)                      # A's groups g0-g2 differ along dim 0, g3 along dim 1
    X[:150] += np.where(np.arange(150)[:, None] % 4 == 3, [0, 4.0] + [0] * 6, [4.0] + [0] * 7)
    write(root, "novel", X, cols)
    write(root, "ai", X[:150], {"grp": cols["grp"][:150]})
    write(root, "human", X[150:], {})
    write(root, "wide", rng.normal(size=(40, 9)), {})
    # zero-shot: 6 classes around random centres, a shuffled label column, and 24 rows of an unknown label
    centres = rng.normal(size=(6, 32))
    label = np.r_[np.arange(300) % 6, np.full(24, -1)]
    img = np.where(label[:, None] >= 0, centres[label], rng.normal(size=(324, 32)))
    img += 0.8 * rng.normal(size=(324, 32))
    style = [CLASSES[c] if c >= 0 else "unknown" for c in label]
    write(root, "img", img, {"style": style, "shuffled": list(rng.permutation(style))})
    prompts = np.repeat(centres, 2, axis=0) + 0.05 * rng.normal(size=(12, 32))     # two prompts per class
    ghost = rng.normal(size=(1, 32))
    text_labels = [c for c in CLASSES for _ in range(2)] + ["ghost"]
    cols = {"label": text_labels, "template": ["{}"] * 13, "name": text_labels, "prompt": text_labels}
    write(root, "prompts", np.vstack([prompts, ghost]), cols, kind="text")
    write(root, "few", centres[:3], {c: CLASSES[:3] for c in ("label", "template", "name", "prompt")}, kind="text")
    write(root, "other", centres, {c: CLASSES for c in ("label", "template", "name", "prompt")}, kind="text",
          pretrained="laion2b")
    with store.open(root) as s:
        yield s


def sep(s, **options):
    return separability.run(s, separability.Config.from_dict({**FAST, **options}))


def zs(s, **options):
    return zero_shot.run(s, zero_shot.Config.from_dict({"table": "img", "label": "style", "texts": "prompts",
                                                        "n_boot": 200, **options}))


# ------------------------------------------------------------------ separability
def test_shifted_clouds_separate_almost_perfectly(syn_store):
    r = sep(syn_store, table="shifted", group="source")
    assert r.metrics["auc"].ci[0] > 0.95 and r.metrics["balanced_accuracy"].value > 0.9
    assert r.baseline == {"auc": 0.5, "balanced_accuracy": 0.5, "pc1_auc": 0.5, "pc2_auc": 0.5}
    assert r.details["sets"]["ai"]["n"] == r.details["sets"]["human"]["n"] == 150 and r.n == 300
    assert r.details["positive"] == "ai" and len(r.details["chosen_C"]) == 4
    pca = r.details["pca"]
    assert len(pca["x"]) == len(pca["y"]) == 300 and set(pca["set"]) == {"ai", "human"}
    assert np.mean(np.array(pca["x"])[np.array(pca["set"]) == "ai"]) > 0     # oriented: set A on the + side


def test_identical_distributions_are_not_separable(syn_store):
    r = sep(syn_store, table="same", group="source")
    for name in ("auc", "pc1_auc", "pc2_auc"):
        lo, hi = r.metrics[name].ci
        assert lo < 0.5 < hi, (name, r.metrics[name])


def test_pc_aucs_are_oriented_on_the_training_fold_so_no_difference_centres_on_one_half():
    """Over 20 no-difference draws the out-of-fold PC AUCs average 0.5 (measured: 0.495 and 0.505). A sign
    chosen on the test fold instead gives about 0.58, above 0.5 in every draw (`make mutants` checks it)."""
    y = np.r_[np.ones(60, int), np.zeros(60, int)]
    cfg = separability.Config(table="t", group="g", Cs=(1.0,))
    aucs = []
    for seed in range(20):
        _, pcs, _ = separability._out_of_fold(np.random.default_rng(seed).normal(size=(120, 16)), y, cfg)
        aucs.append([separability.auc(y, pcs[:, j]) for j in range(2)])
    aucs = np.array(aucs)
    assert np.all(np.abs(aucs.mean(axis=0) - 0.5) < 0.04), aucs.mean(axis=0)
    assert np.all((aucs > 0.5).sum(axis=0) < 16), (aucs > 0.5).sum(axis=0)


def test_shift_along_the_top_principal_component_shows_in_pc1(syn_store):
    r = sep(syn_store, table="pcshift", group="source")
    assert r.metrics["pc1_auc"].ci[0] > 0.85
    assert r.metrics["pc2_auc"].ci[0] < 0.5 < r.metrics["pc2_auc"].ci[1]
    assert r.details["explained_variance_ratio"][0] > 2 * r.details["explained_variance_ratio"][1]


def test_holdout_finds_the_group_that_differs_in_a_new_direction(syn_store):
    grouped = sep(syn_store, table="novel", group="source", holdout_by="grp")
    against = sep(syn_store, table="ai", against="human", holdout_by="grp")
    for r in (grouped, against):
        assert r.metrics["auc"].ci[0] > 0.9
        per = r.per_class
        assert set(per) == {"g0", "g1", "g2", "g3"}
        assert all(per[g]["auc"] > 0.9 for g in ("g0", "g1", "g2")) and per["g3"]["auc"] < 0.75
        assert sum(p["n_test_b"] for p in per.values()) == 150 and per["g0"]["n_test_a"] == 38
        assert r.metrics["holdout_auc"].value == pytest.approx(np.mean([p["auc"] for p in per.values()]))
    assert against.tables == ["ai", "human"] and grouped.tables == ["novel"]
    assert against.metrics == grouped.metrics and against.per_class == grouped.per_class   # same rows, same answer


def test_separability_refusals(syn_store):
    with pytest.raises(ProbeDataError, match="different dims"):
        sep(syn_store, table="ai", against="wide")
    with pytest.raises(ValueError, match="exactly one of"):
        sep(syn_store, table="ai")
    with pytest.raises(ProbeDataError, match="exactly two"):
        sep(syn_store, table="novel", group="grp")


# ------------------------------------------------------------------ zero-shot
def test_true_class_centres_give_high_top1_and_unmatched_rows_are_reported(syn_store):
    r = zs(syn_store)
    assert r.metrics["top1"].ci[0] > 0.9 and r.metrics["top5"].value == 1.0
    assert r.metrics["balanced_accuracy"].value > 0.9 and r.metrics["macro_f1"].value > 0.9
    assert r.baseline["top5"] == pytest.approx(5 / 7) and r.baseline["balanced_accuracy"] == pytest.approx(1 / 7)
    assert r.baseline["top1"] == pytest.approx(1 / 6)
    assert r.n == 300 and r.tables == ["img", "prompts"]
    assert r.details["unmatched_labels"] == {"unknown": 24} and r.details["text_labels_without_rows"] == ["ghost"]
    assert r.details["prompts_per_label"] == {**{c: 2 for c in CLASSES}, "ghost": 1}
    confusion = r.details["confusion"]
    assert confusion["labels"] == CLASSES + ["ghost"] and np.sum(confusion["matrix"]) == 300
    assert set(r.per_class) == set(CLASSES)


def test_shuffled_labels_score_near_chance(syn_store):
    r = zs(syn_store, label="shuffled")
    for name in ("top1", "balanced_accuracy"):      # measured: 0.13 [0.10, 0.17], chance 1/6
        assert abs(r.metrics[name].value - 1 / 6) < 0.07 and r.metrics[name].ci[0] < 1 / 6
    assert r.metrics["top5"].value < r.baseline["top5"] + 0.05


def test_few_labels_have_no_top5(syn_store):
    r = zs(syn_store, texts="few")
    assert "top5" not in r.metrics and r.n == 150 and r.baseline["balanced_accuracy"] == pytest.approx(1 / 3)
    assert r.details["unmatched_labels"] == {"c3": 50, "c4": 50, "c5": 50, "unknown": 24}


def test_text_table_from_another_model_is_refused(syn_store):
    with pytest.raises(IncompatibleError, match="zero-shot: .*different models or weights.*pretrained"):
        zs(syn_store, texts="other")
    with pytest.raises(IncompatibleError, match="not a 'text' table"):
        zs(syn_store, texts="ai")


# ------------------------------------------------------------------ real data
def test_ai_pastiche_and_national_gallery_are_separable_even_for_unseen_generators(findings_results):
    # The findings suite's run (conftest.py; Cs 0.1..100 with inner sweeps, n_boot 1000) chose C = 100 in every
    # fold and measured auc 0.997 [0.995, 0.998], balanced accuracy 0.974, pc1 0.827, pc2 0.799, holdout mean
    # 0.994 [0.987, 0.999], lowest generator Ideogram 0.955.
    r = findings_result(findings_results, "separability", "ai_pastiche", against="ngd",
                        holdout_by="generative_model")
    m = r.metrics
    assert r.n == 1906 and r.details["sets"]["ai_pastiche"]["n"] == r.details["sets"]["ngd"]["n"] == 953
    assert m["auc"].ci[0] > 0.99 and m["balanced_accuracy"].ci[0] > 0.95
    assert 0.75 < m["pc1_auc"].value < 0.9 and 0.7 < m["pc2_auc"].value < 0.9    # visible, far from linear
    assert len(r.per_class) == 12 and m["holdout_auc"].ci[0] > 0.97
    assert min(p["auc"] for p in r.per_class.values()) > 0.9
    assert len(r.details["pca"]["x"]) == 1906
