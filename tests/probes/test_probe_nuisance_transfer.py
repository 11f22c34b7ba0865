"""Issue 18 in `linear`, `regression` and `period`: groups over several columns, nuisance baselines and
transfer to another table, on synthetic tables whose answers are known before the probes run."""
import json

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from artlens import store
from artlens.cli.main import main
from artlens.probes import linear, period, regression
from artlens.probes.classify import _codes, fast_scores, majority_by_key
from artlens.probes.data import ProbeDataError
from artlens.probes.regression import mean_by_key
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter

CHAINS = 60                    # the chain table: 60 chains of 3 near-identical rows
GENERATORS, PROMPTS = 6, 60    # the nuisance table: one image per prompt and generator
CENTURIES = ["XV century", "XVII century", "XIX century"]


def _write(root, name, columns: dict, X: np.ndarray) -> None:
    rows = [{"key": f"k{i:04d}", "shard": "syn",
             **{c: (v[i].item() if isinstance(v[i], np.generic) else v[i]) for c, v in columns.items()}}
            for i in range(len(X))]
    writer = TableWriter(root, TableEntry(name=name, model="m", pretrained="p", preprocess="x", dim=X.shape[1]))
    writer.commit("syn", rows, np.asarray(X, np.float32), [])
    writer.finish()


def _labelled(rng, n: int, dim: int = 16, flip: bool = False):
    """Two styles on two centres, a score read off one axis, a 4-valued `src` and 12 artists."""
    centres = np.random.default_rng(99).normal(size=(2, dim))  # one process for every such table
    style = rng.integers(0, 2, n)
    X = centres[style] + 2.5 * rng.normal(size=(n, dim))
    label = (1 - style) if flip else style
    return {"style": np.array([f"s{v}" for v in label], dtype=object),
            "score": X[:, 0] + 0.2 * rng.normal(size=n), "src": np.array([f"c{i % 4}" for i in range(n)], dtype=object),
            "artist": np.array([f"a{i % 12}" for i in range(n)], dtype=object),
            "other": np.array([f"o{(i % 12) // 2}" for i in range(n)], dtype=object),
            "period": np.array([CENTURIES[v] for v in label], dtype=object)}, X


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    root = tmp_path_factory.mktemp("nuisance-transfer")
    rng = np.random.default_rng(7)
    dim = 16

    # chains a-b-c: a and b share an artist, b and c a dup_group; one random target / label per chain
    base = rng.normal(size=(CHAINS, 8 * dim))                   # room for a ridge to memorise 60 chains
    chain = np.repeat(np.arange(CHAINS), 3)
    pos = np.tile(np.arange(3), CHAINS)
    X = base[chain] + 0.01 * rng.normal(size=(3 * CHAINS, 8 * dim))
    value = rng.normal(size=CHAINS)
    _write(root, "chain", {
        "artist": np.array([f"A{c}" if p < 2 else f"A{c}c" for c, p in zip(chain, pos)], dtype=object),
        "dup_group": np.array([None if p == 0 else f"D{c}" for c, p in zip(chain, pos)], dtype=object),
        "target": value[chain], "label": np.array([f"l{int(v > 0)}" for v in value[chain]], dtype=object),
        "period": np.array([CENTURIES[int(v > 0)] for v in value[chain]], dtype=object)}, X)

    # one image per prompt and generator; the embedding carries the generator and a within-generator signal
    gen = np.tile(np.arange(GENERATORS), PROMPTS)
    prompt = np.repeat(np.arange(PROMPTS), GENERATORS)
    n = len(gen)
    w = rng.normal(size=n)
    X = np.concatenate([3 * np.eye(GENERATORS)[gen], w[:, None], rng.normal(size=(n, dim - GENERATORS - 1))], 1)
    gen_mean = np.linspace(-2, 2, GENERATORS)[gen]
    _write(root, "nui", {
        "generator": np.array([f"g{g}" for g in gen], dtype=object),
        "prompt": np.array([f"p{p}" for p in prompt], dtype=object),
        "unique": np.array([f"u{i}" for i in range(n)], dtype=object),
        "pure": gen_mean + rng.normal(size=n), "within": gen_mean + w + 0.3 * rng.normal(size=n),
        "by_gen": np.array([f"y{int(g >= 3)}" for g in gen], dtype=object),
        "by_w": np.array([f"z{int(v > 0)}" for v in w], dtype=object)}, X)

    # transfer: A and B from one process, F with its labels flipped, D of another dim, M without labels
    for name, seed, flip in (("A", 1, False), ("B", 2, False), ("F", 3, True)):
        cols, X = _labelled(np.random.default_rng(seed), 240, flip=flip)
        _write(root, name, cols, X)
    cols, X = _labelled(np.random.default_rng(4), 60)
    cols["style"] = np.array(["s2" if i % 6 == 0 else v for i, v in enumerate(cols["style"])], dtype=object)
    _write(root, "U", cols, X)                                  # a class the fit table lacks
    cols, X = _labelled(np.random.default_rng(5), 60, dim=8)
    _write(root, "D", cols, X)
    cols, X = _labelled(np.random.default_rng(6), 60)
    _write(root, "M", {"score": cols["score"]}, X)
    with store.open(root) as opened:
        yield opened


def _regression(s, table, **options):
    return regression.run(s, regression.Config.from_dict({"table": table, "n_boot": 200, **options}))


def _linear(s, table, **options):
    return linear.run(s, linear.Config.from_dict({"table": table, "n_boot": 100, "Cs": (1.0, 100.0),
                                                  "min_count": 2, **options}))


# -------------------------------------------------------------------------------- groups over columns
def test_rows_linked_through_two_columns_never_straddle_a_fold(s):
    """artist alone leaves b and c (one dup_group) in different folds; artist + dup_group joins each chain."""
    one = _regression(s, "chain", target="target", group="artist")
    both = _regression(s, "chain", target="target", group=("artist", "dup_group"))
    assert one.details["n_groups"] == 2 * CHAINS and both.details["n_groups"] == CHAINS
    assert both.details["grouped_by"] == ["artist", "dup_group"]
    assert one.details["straddling_duplicates"] > 0 and both.details["straddling_duplicates"] == 0
    # leakage through the chain's third row: only the union grouping brings the probe back to chance
    assert one.metrics["spearman_rho"].ci[0] > 0.3
    assert both.metrics["spearman_rho"].ci[0] < 0 < both.metrics["spearman_rho"].ci[1] + 0.1
    assert both.metrics["spearman_rho"].value < 0.3


def test_linear_and_period_combine_group_columns_too(s):
    r = _linear(s, "chain", label="label", group=("artist", "dup_group"))
    assert (r.details["n_groups"], r.details["straddling_duplicates"]) == (CHAINS, 0)
    assert r.metrics["balanced_accuracy"].value < 0.75
    leaky = _linear(s, "chain", label="label", group="dup_group")     # rows a: NULL dup_group, left out
    assert leaky.n == 2 * CHAINS and leaky.details["straddling_duplicates"] == 0
    p = period.run(s, period.Config.from_dict({"table": "chain", "group": ["artist", "dup_group"], "n_boot": 40,
                                               "Cs": (1.0,), "min_count": 2}))
    assert (p.details["n_groups"], p.details["straddling_duplicates"]) == (CHAINS, 0)
    assert p.details["grouped_by"] == ["artist", "dup_group"]


def test_no_dup_group_column_no_duplicate_report(s):
    assert _regression(s, "nui", target="pure", group="prompt").details["straddling_duplicates"] is None


# ----------------------------------------------------------------------------- nuisance: regression
def test_a_target_that_is_the_generator_mean_gains_nothing_over_the_generator(s):
    r = _regression(s, "nui", target="pure", group="prompt", nuisance="generator")
    m = r.metrics
    assert m["spearman_rho"].ci[0] > 0.5                        # the embedding carries the generator ...
    assert m["nuisance.spearman_rho"].ci[0] > 0.5               # ... and so does the nuisance model
    for name in ("pearson_r", "mae", "r2"):                      # no gain over the generator ...
        gain = m[f"{name}_gain_over_nuisance"]                   # (the ridge may do a little worse than the
        assert gain.ci[0] < 0 and gain.value < 0.05, (name, gain)  # exact generator means: never better)
    # (Spearman's rho of the nuisance model is held back by its ties, one prediction per generator: its
    # gain is near 0 but need not straddle it: measured 0.017 [0.004, 0.031])
    assert abs(m["spearman_rho_gain_over_nuisance"].value) < 0.05
    for name in ("spearman_rho", "pearson_r"):                   # ... and no signal within a generator
        within = m[f"within_nuisance.{name}"]
        assert within.ci[0] < 0 < within.ci[1], (name, within)
    assert r.baseline["spearman_rho_gain_over_nuisance"] == 0 == r.baseline["within_nuisance.spearman_rho"]
    assert r.baseline["nuisance.mae"] == r.baseline["mae"]
    assert r.details["nuisance"] == {"columns": ["generator"], "combinations": GENERATORS,
                                     "unseen_in_training": 0}


def test_a_signal_within_each_generator_is_a_gain_over_the_generator(s):
    m = _regression(s, "nui", target="within", group="prompt", nuisance="generator").metrics
    for name in ("spearman_rho", "pearson_r", "mae", "r2"):
        assert m[f"{name}_gain_over_nuisance"].ci[0] > 0, name
    assert m["within_nuisance.spearman_rho"].ci[0] > 0.5 and m["within_nuisance.pearson_r"].ci[0] > 0.5
    assert m["nuisance.mae"].value > m["mae"].value


def test_the_nuisance_model_sees_training_folds_only(s):
    """A column unique to each row: no test row's value was seen in training, so the nuisance model
    predicts the training fold's mean, exactly the MAE baseline (computed out of fold the same way)."""
    r = _regression(s, "nui", target="pure", group="prompt", nuisance="unique")
    assert r.details["nuisance"]["unseen_in_training"] == r.n == GENERATORS * PROMPTS
    assert r.details["nuisance"]["combinations"] == r.n
    assert r.metrics["nuisance.mae"].value == pytest.approx(r.baseline["mae"], abs=1e-12)
    assert r.metrics["nuisance.r2"].value < 0.02
    c = _linear(s, "nui", label="by_gen", nuisance="unique")
    assert c.details["nuisance"]["unseen_in_training"] == c.n
    assert c.metrics["nuisance.balanced_accuracy"].value == pytest.approx(0.5)


def test_two_nuisance_columns_make_combinations_and_null_is_a_value():
    keys_train = np.array(["a", "a", "b", "b", "b"], dtype=object)
    pred, unseen = mean_by_key(keys_train, np.array([1.0, 3.0, 10.0, 10.0, 40.0]), np.array(["a", "b", "c"]))
    assert pred.tolist() == [2.0, 20.0, 12.8] and unseen.tolist() == [False, False, True]
    labels, unseen = majority_by_key(keys_train, np.array(["y", "x", "z", "z", "x"]), np.array(["a", "b", "c"]))
    assert labels.tolist() == ["x", "z", "x"] and unseen.tolist() == [False, False, True]  # ties → sorted first
    from artlens.probes.classify import nuisance_keys
    keys = nuisance_keys({"g": np.array(["1", None, 1], dtype=object), "h": np.array(["a", "a", "a"])}, ["g", "h"])
    assert keys[0] == keys[2] != keys[1]


# ------------------------------------------------------------------------------- nuisance: linear
def test_a_label_set_by_the_nuisance_column_gains_nothing_and_one_within_it_does(s):
    by_gen = _linear(s, "nui", label="by_gen", group="prompt", nuisance="generator")
    m = by_gen.metrics
    assert m["nuisance.accuracy"].value == 1.0 and m["accuracy"].value > 0.95
    for name in ("accuracy", "balanced_accuracy", "macro_f1"):
        gain = m[f"{name}_gain_over_nuisance"]
        assert gain.ci[1] <= 1e-12 and gain.value > -0.05, (name, gain)   # never better than the generator
        assert by_gen.baseline[f"nuisance.{name}"] == by_gen.baseline[name]
    by_w = _linear(s, "nui", label="by_w", group="prompt", nuisance="generator").metrics
    assert by_w["nuisance.balanced_accuracy"].ci[1] < 0.65
    assert by_w["balanced_accuracy_gain_over_nuisance"].ci[0] > 0.2


def test_fast_scores_equal_sklearn_exactly():
    """Bit for bit, also on resamples that lack classes (every probe's bootstrap uses them: the committed
    findings must not move when the metric's implementation does)."""
    import warnings

    rng = np.random.default_rng(3)
    for trial in range(60):
        n = int(rng.integers(5, 400))
        y = rng.choice(["a", "b", "c", "d", "f", "g"][: 2 + trial % 5], n)
        pred = np.where(rng.random(n) < 0.6, y, rng.choice(["a", "b", "c", "e"], n))
        (yc, pc), k, labels = _codes(y, pred)
        full = np.unique(y)
        for i in (np.arange(n), rng.integers(0, n, n), rng.integers(0, n, max(1, n // 7))):
            got = fast_scores(yc[i], pc[i], k, labels)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert got["accuracy"] == accuracy_score(y[i], pred[i])
                assert got["balanced_accuracy"] == balanced_accuracy_score(y[i], pred[i])
                assert got["macro_f1"] == f1_score(y[i], pred[i], average="macro", labels=full, zero_division=0)


# ---------------------------------------------------------------------------------------- transfer
def test_transfer_to_a_table_of_the_same_process_scores_like_the_table_itself(s):
    r = _linear(s, "A", label="style", test_table="B", nuisance="src")
    m, base = r.metrics, r.baseline
    assert r.tables == ["A", "B"] and r.details["transfer"]["n"] == 240
    assert abs(m["transfer.accuracy"].value - m["accuracy"].value) < 0.08
    assert m["transfer.accuracy"].ci[0] > base["transfer.accuracy"] + 0.2
    assert m["transfer.accuracy"].ci[0] < m["transfer.accuracy"].value < m["transfer.accuracy"].ci[1]
    assert base["transfer.balanced_accuracy"] == 0.5 and "transfer.nuisance.accuracy" in m
    assert m["transfer.accuracy_gain_over_nuisance"].ci[0] > 0.2
    assert r.details["transfer"]["nuisance"]["unseen_in_training"] == 0
    g = _regression(s, "A", target="score", test_table="B")
    assert abs(g.metrics["transfer.spearman_rho"].value - g.metrics["spearman_rho"].value) < 0.1
    assert g.metrics["transfer.mae"].ci[1] < g.baseline["transfer.mae"]


def test_transfer_to_flipped_labels_falls_below_the_baseline(s):
    r = _linear(s, "A", label="style", test_table="F")
    assert r.metrics["transfer.accuracy"].ci[1] < r.baseline["transfer.accuracy"]
    assert r.metrics["transfer.balanced_accuracy"].ci[1] < 0.5


def test_transfer_counts_test_classes_the_fit_table_lacks(s):
    r = _linear(s, "A", label="style", test_table="U", group="artist")
    assert r.details["transfer"]["unseen_classes"] == {"s2": 10}
    assert r.details["transfer"]["grouped_by"] == ["artist"] and r.details["transfer"]["n_groups"] == 12
    assert r.per_class and "s2" not in r.per_class


def test_transfer_refuses_other_dims_and_missing_columns(s):
    with pytest.raises(ProbeDataError, match="8-dimensional"):
        _linear(s, "A", label="style", test_table="D")
    with pytest.raises(ProbeDataError, match="no column"):
        _linear(s, "A", label="style", test_table="M")
    with pytest.raises(ProbeDataError, match="no column"):
        _regression(s, "A", target="score", test_table="M", nuisance="src")
    with pytest.raises(ProbeDataError, match="no table"):
        _regression(s, "A", target="score", test_table="nope")


def test_period_names_its_nuisance_and_transfer_figures(s):
    r = period.run(s, period.Config.from_dict({"table": "A", "test_table": "B", "nuisance": "src", "n_boot": 40,
                                               "Cs": (1.0,)}))
    for name in ("century.nuisance.accuracy", "century.macro_f1_gain_over_nuisance", "year.nuisance.mae",
                 "year.mae_gain_over_nuisance", "year.within_nuisance.spearman_rho", "transfer.century.accuracy",
                 "transfer.year.mae", "transfer.century.nuisance.accuracy", "transfer.year.within_nuisance.pearson_r"):
        assert name in r.metrics, name
    assert r.metrics["transfer.century.accuracy"].value > 0.7 and r.tables == ["A", "B"]
    assert r.details["nuisance"]["combinations"] == 4 and r.details["transfer"]["unseen_centuries"] == {}


def test_the_cli_takes_repeated_groups_nuisance_and_a_test_table(s, tmp_path):
    out = tmp_path / "r.json"
    assert main(["probe", "linear", "--store", str(s.layout.root), "--table", "A", "--label", "style",
                 "--test-table", "B", "--nuisance", "src", "--group", "artist", "--group", "other",
                 "--n-boot", "40", "--Cs", "1.0", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["tables"] == ["A", "B"] and data["config"]["group"] == ["artist", "other"]
    assert data["config"]["nuisance"] == ["src"] and data["details"]["grouped_by"] == ["artist", "other"]
    assert data["details"]["n_groups"] == 6      # two artists to an `other` value
    assert "transfer.nuisance.accuracy" in data["metrics"]


def test_the_test_table_can_name_its_own_group_columns(s):
    """A fit table grouped by one column and a test table grouped by another (NGA by artist, AI-Pastiche by
    prompt): the transfer interval resamples the test table's own groups, and a column it lacks is refused."""
    own = _regression(s, "A", target="score", group="artist", test_table="B", test_group="src")
    assert own.details["transfer"]["grouped_by"] == ["src"] and own.details["transfer"]["n_groups"] == 4
    same = _regression(s, "A", target="score", group="artist", test_table="B")
    assert same.details["transfer"]["grouped_by"] == ["artist"] and same.details["transfer"]["n_groups"] == 12
    m, m_same = own.metrics["transfer.spearman_rho"], same.metrics["transfer.spearman_rho"]
    assert m.value == m_same.value and m.ci != m_same.ci          # same predictions, other resampling unit
    with pytest.raises(ProbeDataError, match="nope"):
        _regression(s, "A", target="score", group="artist", test_table="B", test_group="nope")
