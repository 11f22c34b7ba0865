"""Known-answer tests for every probe that splits rows or resamples (issue 21, point 1).

Each probe runs on synthetic tables built here, whose answer is known before the probe runs:

* no signal: embeddings drawn independently of the label / target (seeded noise) → the 95% interval of
  each headline metric contains the baseline the probe reports next to it (chance, majority, mean
  predictor, 0.5 AUC, no correlation);
* planted signal: embeddings that encode the label / target plainly → the metric is high and its interval
  lies beyond the baseline;
* planted group leakage: GROUPS groups of PER_GROUP near-identical rows (one random vector per group plus
  tiny noise), the label / target random per group → without `group` a probe that splits rows scores high
  (group-mates of a test row sit in its training fold, or among its neighbours); with `group=grp` it is
  back at chance. A probe whose `group` option does not reach its splits (or its neighbour search) fails
  the grouped half.

Probes or cases that do not apply: `rsa` has no folds (checked: no-signal interval contains 0 with a large
Mantel p; planted: interval above 0, smallest possible p; leakage: near-duplicate pairs give a small p
without `group`, and with it the interval contains 0 and p is large); `zero-shot` fits nothing and has no
`group` (no-signal and planted only); `separability`'s leakage case takes its two sets from the label
(`sets=label`).

Out-of-fold R² and MAE gain (and, grouped, the regression's correlations) are checked one-sided under no
signal: fitting noise makes predictions slightly worse than the training mean, and with few groups per
test fold cross-validated correlations are biased below 0, so their intervals may lie below the baseline;
they must not lie above it. Tables and probes are seeded: each no-signal case is one draw, and a 95%
interval misses its baseline for some seeds by chance (more often where it under-covers).

The `macro_f1` baseline was once the macro-F1 of always predicting the majority class (1/6 for three balanced
classes), which a label-blind classifier beats (about 1/3): these tests found it, and the baseline is now the
better of that and guessing at the class rates (1/k, `probes/classify.py` `label_blind_macro_f1`).
"""
from __future__ import annotations

import numpy as np
import pytest

from artlens import store
from artlens.probes import deformation, knn, linear, period, regression, rsa, separability, zero_shot
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter

DIM = 32
N = 240                                   # rows of the no-signal and planted tables
GROUPS, PER_GROUP = 40, 5                 # the leakage table: 200 rows
DEFORM_GROUPS = 20                        # the deformation leakage table: 100 paintings
SEEDS = {"noise": 10, "noise_deformed": 11, "planted": 20, "sets": 30, "leak": 41, "deform_leak": 50}
CENTURIES = np.array(["XV century", "XVII century", "XIX century"])
N_BOOT = 200                              # probes with cheap (numpy) metrics
N_BOOT_SK = 100                           # probes whose bootstrap calls sklearn metrics (0.01 s a resample)
FAST = {"Cs": (1.0, 100.0)}               # a two-value C sweep: the inner CV still chooses, at half the cost


# ------------------------------------------------------------------------------------------ the tables
def _write(root, name: str, columns: dict, X: np.ndarray, **entry) -> TableEntry:
    rows = [{"key": f"k{i:04d}", "shard": "syn",
             **{c: (v[i].item() if isinstance(v[i], np.generic) else v[i]) for c, v in columns.items()}}
            for i in range(len(X))]
    fields = {"model": "m", "pretrained": "p", "preprocess": "x", "dim": X.shape[1], **entry}
    writer = TableWriter(root, TableEntry(name=name, **fields))
    writer.commit("syn", rows, np.asarray(X, np.float32), [])
    return writer.finish()


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _write_deformed(root, clean: str, D: np.ndarray) -> None:
    """A deformation table of `clean` (one deformation, one severity): row i deforms clean row i."""
    columns = {"deformation": np.full(len(D), "blur", dtype=object), "severity": np.ones(len(D), int),
               "level": np.ones(len(D)), "ssim": np.full(len(D), 0.8)}
    _write(root, f"{clean}_deformed", columns, _unit(D), kind="deformation", parent=clean,
           preprocess="synthetic deformations")


def _write_texts(root, name: str, W: np.ndarray, prompts: int = 2, seed: int = 0) -> None:
    """A text table: `prompts` prompt vectors per label c0, c1, ... scattered slightly around W's rows."""
    rng = np.random.default_rng(seed)
    labels = np.repeat([f"c{j}" for j in range(len(W))], prompts)
    vectors = np.repeat(_unit(W), prompts, axis=0) + 0.05 * rng.normal(size=(len(labels), W.shape[1]))
    columns = {"label": labels, "template": np.full(len(labels), "{}"), "name": labels, "prompt": labels}
    _write(root, name, columns, _unit(vectors), kind="text", preprocess="tokenizer")


def _balanced(rng, n: int, k: int) -> np.ndarray:
    return rng.permutation(np.arange(n) % k)


def _names(prefix: str, codes: np.ndarray) -> np.ndarray:
    return np.array([f"{prefix}{c}" for c in codes], dtype=object)


@pytest.fixture(scope="module")
def s(tmp_path_factory):
    root = tmp_path_factory.mktemp("known-answers")

    # no signal: every column independent of the (standard normal) embeddings and of each other
    rng = np.random.default_rng(SEEDS["noise"])
    X = rng.normal(size=(N, DIM))
    noise = {"label": _names("c", _balanced(rng, N, 3)), "target": rng.normal(size=N),
             "period": CENTURIES[_balanced(rng, N, 3)], "set": _names("s", _balanced(rng, N, 2)),
             "gen": _names("g", rng.integers(0, 3, N))}
    _write(root, "noise", noise, X)
    _write_texts(root, "prompts_noise", rng.normal(size=(3, DIM)), seed=SEEDS["noise"] + 1)
    deformed = np.random.default_rng(SEEDS["noise_deformed"]).normal(size=(N, DIM))
    _write_deformed(root, "noise", deformed)                             # unrelated to the clean rows

    # planted: three clusters carry label and century; `target` is a direction of the embedding
    rng = np.random.default_rng(SEEDS["planted"])
    label = np.arange(N) % 3
    centres = rng.normal(size=(3, DIM))
    X = 2.5 * centres[label] + rng.normal(size=(N, DIM))
    direction = _unit(rng.normal(size=(1, DIM)))[0]
    planted = {"label": _names("c", label), "target": X @ direction + 0.2 * rng.normal(size=N),
               "period": CENTURIES[label]}
    _write(root, "planted", planted, X)
    shift = _unit(rng.normal(size=(1, DIM)))[0]
    _write_deformed(root, "planted", _unit(X) + 0.3 * shift + 0.02 * rng.normal(size=(N, DIM)))
    _write_texts(root, "prompts_planted", centres, seed=SEEDS["planted"] + 1)

    # planted sets: set "s1" is shifted by 3 along one direction (the largest variance: PC1 finds it)
    rng = np.random.default_rng(SEEDS["sets"])
    sets = _balanced(rng, N, 2)
    X = rng.normal(size=(N, DIM)) + 3.0 * sets[:, None] * _unit(rng.normal(size=(1, DIM)))
    _write(root, "planted_sets", {"set": _names("s", 1 - sets), "gen": _names("g", rng.integers(0, 3, N))}, X)

    # group leakage: GROUPS near-identical groups; label, century and target random per group
    rng = np.random.default_rng(SEEDS["leak"])
    g = np.repeat(np.arange(GROUPS), PER_GROUP)
    X = rng.normal(size=(GROUPS, DIM))[g] + 0.01 * rng.normal(size=(len(g), DIM))
    leak = {"label": _names("c", _balanced(rng, GROUPS, 2)[g]), "target": rng.normal(size=GROUPS)[g],
            "period": CENTURIES[:2][_balanced(rng, GROUPS, 2)[g]], "grp": _names("g", g)}
    _write(root, "leak", leak, X)

    # group leakage of deformations: each group's deformation moves it along a direction of its own, so it
    # is detectable only from group-mates (DEFORM_GROUPS, fewer: a linear model must fit every group's
    # direction at once). The label, random per group, is predictable only from group-mates.
    rng = np.random.default_rng(SEEDS["deform_leak"])
    g = np.repeat(np.arange(DEFORM_GROUPS), PER_GROUP)
    X = rng.normal(size=(DEFORM_GROUPS, DIM))[g] + 0.01 * rng.normal(size=(len(g), DIM))
    _write(root, "deform_leak", {"label": _names("c", _balanced(rng, DEFORM_GROUPS, 2)[g]),
                                 "grp": _names("g", g)}, X)
    U = _unit(rng.normal(size=(DEFORM_GROUPS, DIM)))
    _write_deformed(root, "deform_leak", _unit(X) + 0.6 * U[g] + 0.01 * rng.normal(size=(len(g), DIM)))

    with store.open(root) as opened:
        yield opened


_CACHE: dict = {}


def probe(s, module, **options):
    """Run a probe once per options (several tests read one result)."""
    key = (id(s), module.NAME, tuple(sorted(options.items())))
    if key not in _CACHE:
        _CACHE[key] = module.run(s, module.Config.from_dict(options))
    return _CACHE[key]


# --------------------------------------------------------------------------------------- assertions
def contains_baseline(result, *names) -> None:
    for name in names:
        lo, hi = result.metrics[name].ci
        base = result.baseline[name]
        assert lo <= base <= hi, f"{name}: baseline {base:.4f} outside the interval [{lo:.4f}, {hi:.4f}]"


def above_baseline(result, *names, value: float | None = None) -> None:
    """The interval lies above the baseline (higher is better), and the value is above `value`."""
    for name in names:
        m, base = result.metrics[name], result.baseline[name]
        assert m.ci[0] > base, f"{name}: interval [{m.ci[0]:.4f}, {m.ci[1]:.4f}] reaches baseline {base:.4f}"
        if value is not None:
            assert m.value > value, f"{name}: {m.value:.4f} <= {value}"


def below_baseline(result, *names) -> None:
    """The interval lies below the baseline (lower is better: MAE, shift, flip rate)."""
    for name in names:
        m, base = result.metrics[name], result.baseline[name]
        assert m.ci[1] < base, f"{name}: interval [{m.ci[0]:.4f}, {m.ci[1]:.4f}] reaches baseline {base:.4f}"


def not_above_baseline(result, *names) -> None:
    """No evidence of signal: the interval reaches down to the baseline (it may lie wholly below it)."""
    for name in names:
        m, base = result.metrics[name], result.baseline[name]
        assert m.ci[0] <= base, f"{name}: interval [{m.ci[0]:.4f}, {m.ci[1]:.4f}] above baseline {base:.4f}"


def clustered(result, name: str, width: float) -> None:
    """The interval is as wide as GROUPS independent groups allow: with `group` the bootstrap resamples whole
    groups, not the 5x as many rows (a row bootstrap of the leakage table gives about half the width)."""
    lo, hi = result.metrics[name].ci
    assert hi - lo > width, f"{name}: interval [{lo:.4f}, {hi:.4f}] narrower than {width}: rows resampled?"


# ------------------------------------------------------------------------------------------- linear
def _linear(s, table, **options):
    return probe(s, linear, table=table, label="label", n_boot=N_BOOT_SK, **FAST, **options)


def test_linear_no_signal(s):
    r = _linear(s, "noise")
    contains_baseline(r, "accuracy", "balanced_accuracy")
    assert r.baseline["balanced_accuracy"] == pytest.approx(1 / 3)


def test_linear_planted(s):
    above_baseline(_linear(s, "planted"), "accuracy", "balanced_accuracy", "macro_f1", value=0.95)


@pytest.mark.slow
def test_linear_group_leakage(s):
    leaky, grouped = _linear(s, "leak"), _linear(s, "leak", group="grp")
    above_baseline(leaky, "accuracy", "balanced_accuracy", value=0.9)
    contains_baseline(grouped, "accuracy", "balanced_accuracy")
    assert grouped.metrics["balanced_accuracy"].value < 0.7
    clustered(grouped, "balanced_accuracy", 0.2)
    assert grouped.details["n_groups"] == GROUPS


# ---------------------------------------------------------------------------------------------- knn
def _knn(s, table, **options):
    # k < PER_GROUP: without `group`, every neighbour of a leakage row is one of its own group
    return probe(s, knn, table=table, label="label", k=4, n_boot=N_BOOT, **options)


def test_knn_no_signal(s):
    contains_baseline(_knn(s, "noise"), "label.knn_accuracy", "label.purity")


def test_knn_planted(s):
    above_baseline(_knn(s, "planted"), "label.knn_accuracy", "label.purity", value=0.95)


def test_knn_group_leakage(s):
    leaky, grouped = _knn(s, "leak"), _knn(s, "leak", group="grp")
    above_baseline(leaky, "label.knn_accuracy", "label.purity", value=0.95)
    contains_baseline(grouped, "label.knn_accuracy", "label.purity")
    assert grouped.details["kappa"]["label"] < 0.2
    clustered(grouped, "label.knn_accuracy", 0.2)
    assert grouped.details["n_groups"] == GROUPS


# --------------------------------------------------------------------------------------- regression
REGRESSION = ("spearman_rho", "pearson_r", "r2", "mae_gain")
#: Fit on noise, a model's out-of-fold predictions are a little worse than the training-fold mean, and
#: the paired intervals of R² and MAE gain are narrow, so with no signal those may lie wholly below 0:
#: they are checked one-sided (no gain), the correlations and the MAE two-sided.
GAINS = ("r2", "mae_gain")


def _regression(s, table, **options):
    return probe(s, regression, table=table, target="target", n_boot=N_BOOT, **options)


def test_regression_no_signal(s):
    r = _regression(s, "noise")
    contains_baseline(r, "spearman_rho", "pearson_r", "mae")
    not_above_baseline(r, *GAINS)


def test_regression_planted(s):
    r = _regression(s, "planted")
    above_baseline(r, "spearman_rho", "pearson_r", "r2", value=0.9)
    above_baseline(r, "mae_gain")
    below_baseline(r, "mae")


def test_regression_group_leakage(s):
    leaky, grouped = _regression(s, "leak"), _regression(s, "leak", group="grp")
    above_baseline(leaky, *REGRESSION, value=0.15)
    below_baseline(leaky, "mae")
    # Grouped: the model is no better than predicting the training mean. The correlations are only checked
    # one-sided: with 8 groups per test fold, out-of-fold predictions near the training-fold mean are
    # anti-correlated with the test fold's targets (the known negative bias of cross-validated correlation
    # under no signal), so their interval may lie below 0; it must not lie above it.
    contains_baseline(grouped, "mae")
    not_above_baseline(grouped, *REGRESSION)
    assert grouped.metrics["spearman_rho"].value < 0.2
    clustered(grouped, "spearman_rho", 0.4)
    assert grouped.details["n_groups"] == GROUPS


# ------------------------------------------------------------------------------------------- period
CENTURY = ("century.accuracy", "century.balanced_accuracy")
YEAR = ("year.spearman_rho", "year.pearson_r", "year.mae")
YEAR_GAINS = tuple(f"year.{name}" for name in GAINS)


def _period(s, table, **options):
    return probe(s, period, table=table, column="period", n_boot=N_BOOT_SK, **FAST, **options)


def test_period_no_signal(s):
    r = _period(s, "noise")
    assert r.details["parsing"]["unparsed"] == 0 and r.n == N
    contains_baseline(r, *CENTURY, *YEAR)
    not_above_baseline(r, *YEAR_GAINS)


def test_period_planted(s):
    r = _period(s, "planted")
    above_baseline(r, *CENTURY, "century.macro_f1", value=0.95)
    above_baseline(r, "year.spearman_rho", "year.pearson_r", "year.r2", value=0.9)
    below_baseline(r, "year.mae")


@pytest.mark.slow
def test_period_group_leakage(s):
    leaky, grouped = _period(s, "leak"), _period(s, "leak", group="grp")
    above_baseline(leaky, *CENTURY, value=0.9)
    above_baseline(leaky, "year.spearman_rho", "year.mae_gain", value=0.5)
    contains_baseline(grouped, *CENTURY, *YEAR)
    not_above_baseline(grouped, *YEAR_GAINS)
    assert grouped.metrics["century.balanced_accuracy"].value < 0.7
    clustered(grouped, "century.balanced_accuracy", 0.2)
    assert grouped.details["n_groups"] == GROUPS


# ------------------------------------------------------------------------------------- separability
SEPARABILITY = ("auc", "balanced_accuracy", "pc1_auc", "pc2_auc", "pcs_accuracy", "pcs_auc", "holdout_auc")


def _separability(s, table):
    return probe(s, separability, table=table, sets="set", holdout_by="gen", n_boot=N_BOOT, **FAST)


def test_separability_no_signal(s):
    r = _separability(s, "noise")
    assert set(r.baseline) == set(SEPARABILITY) and all(b == 0.5 for b in r.baseline.values())
    contains_baseline(r, *SEPARABILITY)


def test_separability_planted(s):
    r = _separability(s, "planted_sets")
    above_baseline(r, "auc", "balanced_accuracy", "pc1_auc", "pcs_accuracy", "holdout_auc", value=0.9)


def test_separability_group_leakage(s):
    options = {"table": "leak", "sets": "label", "n_boot": N_BOOT, **FAST}
    leaky, grouped = probe(s, separability, **options), probe(s, separability, **options, group="grp")
    above_baseline(leaky, "auc", "balanced_accuracy", value=0.9)
    contains_baseline(grouped, "auc", "balanced_accuracy")
    assert grouped.metrics["auc"].value < 0.7
    clustered(grouped, "auc", 0.2)
    assert grouped.details["n_groups"] == GROUPS and grouped.details["grouped_by"] == ["grp"]


# ---------------------------------------------------------------------------------------------- rsa
def _rsa(s, table, label, **options):
    return probe(s, rsa, table=table, label=label, n_boot=N_BOOT, permutations=199, **options)


@pytest.mark.parametrize("label", ["label", "target"])      # categorical and absolute label distance
def test_rsa_no_signal(s, label):
    r = _rsa(s, "noise", label)
    contains_baseline(r, "spearman_rho")
    assert r.details["p_value"] > 0.1


@pytest.mark.parametrize("label,rho", [("label", 0.5), ("target", 0.1)])
def test_rsa_planted(s, label, rho):
    r = _rsa(s, "planted", label)
    above_baseline(r, "spearman_rho", value=rho)
    assert r.details["p_value"] == pytest.approx(1 / 200)     # no permutation reaches it: the smallest p
    assert r.metrics["spearman_rho"].value > r.details["null_q95"]


@pytest.mark.parametrize("label", ["label", "target"])
def test_rsa_group_leakage(s, label):
    """Near-identical group-mates share their label: counted as pairs and permuted as independent rows they
    make a correlation; with `group`, within-group pairs are left out and whole groups' labels permuted."""
    leaky, grouped = _rsa(s, "leak", label), _rsa(s, "leak", label, group="grp")
    assert leaky.details["p_value"] < 0.05 and leaky.details["permutation"] == "rows"  # rows as if independent
    contains_baseline(grouped, "spearman_rho")
    assert grouped.details["p_value"] > 0.05 and grouped.details["permutation"] == "group labels"
    assert grouped.details["n_groups"] == GROUPS


# ---------------------------------------------------------------------------------------- zero-shot
def _zero_shot(s, kind):
    return probe(s, zero_shot, table=kind, label="label", texts=f"prompts_{kind}", n_boot=N_BOOT_SK)


def test_zero_shot_no_signal(s):
    contains_baseline(_zero_shot(s, "noise"), "top1", "balanced_accuracy")


def test_zero_shot_planted(s):
    above_baseline(_zero_shot(s, "planted"), "top1", "balanced_accuracy", "macro_f1", value=0.95)


# -------------------------------------------------------------------------------------- deformation
def _deformation(s, table, **options):
    return probe(s, deformation, table=table, label="label", n_boot=N_BOOT, **options)


def test_deformation_no_signal(s):
    """Deformed rows unrelated to their clean rows: shift like replacing the painting, AUC 0.5, flips like
    an unrelated prediction."""
    r = _deformation(s, "noise")
    contains_baseline(r, "shift.blur", "auc.blur", "flip.blur", "shift.all.s1", "auc.all.s1")


def test_deformation_planted(s):
    """A small shift along one direction: far below the replacement shift, detected, labels kept."""
    r = _deformation(s, "planted")
    below_baseline(r, "shift.blur", "flip.blur")
    above_baseline(r, "auc.blur", "auc.all.s1", value=0.95)
    assert r.details["grid"][0]["accuracy"] > 0.95


def test_deformation_group_leakage(s):
    """Each group's deformation has its own direction, so it is detectable only from group-mates; and the
    label (random per group) is predictable only from group-mates."""
    leaky = _deformation(s, "deform_leak", C=100.0)
    grouped = _deformation(s, "deform_leak", C=100.0, group="grp")
    above_baseline(leaky, "auc.blur", value=0.9)
    assert leaky.details["grid"][0]["accuracy"] > 0.9
    contains_baseline(grouped, "auc.blur")
    assert grouped.metrics["auc.blur"].value < 0.65
    assert grouped.details["grid"][0]["accuracy"] < 0.75


# ------------------------------------------------------------------------------- macro-F1's baseline
MACRO_F1 = {"linear": lambda s: _linear(s, "noise"), "period": lambda s: _period(s, "noise"),
            "zero-shot": lambda s: _zero_shot(s, "noise")}


@pytest.mark.parametrize("name", sorted(MACRO_F1))
def test_macro_f1_no_signal_contains_baseline(s, name):
    """A label-blind classifier's macro-F1 is about 1/k, not the majority vote's 2/(k(k+1))."""
    r = MACRO_F1[name](s)
    metric = "century.macro_f1" if name == "period" else "macro_f1"
    contains_baseline(r, metric)
    assert r.baseline[metric] == pytest.approx(1 / 3)
