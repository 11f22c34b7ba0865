"""One test, every probe: the shared interface and the JSON result shape other tools rely on.

Runs each registered probe on the synthetic labelled table of the `labelled_store` fixture (conftest.py).
"""
import json

import numpy as np
import pytest

from artlens import store
from artlens.probes.config import ProbeConfig
from artlens.probes.registry import PROBES, available, get_probe
from artlens.probes.result import Result

#: Minimal options per probe on the synthetic table (columns: style, period, subject, score, source;
#: `art_deformed` is its deformation table).
OPTIONS = {
    "linear": {"label": "subject", "n_boot": 50},  # not "style": a perfect 1.0 [1, 1] hides the interval
    "knn": {"labels": ("style", "subject"), "n_boot": 50},
    "regression": {"target": "score", "n_boot": 50},
    "period": {"column": "period", "n_boot": 50},
    "separability": {"sets": "source", "n_boot": 50},
    "rsa": {"label": "style", "permutations": 99},
    "zero-shot": {"label": "style", "texts": "prompts", "n_boot": 50},
    "deformation": {"label": "style", "texts": "prompts", "ratings_table": "art", "ratings_column": "score",
                    "n_boot": 50, "permutations": 99},
}

#: Values at which a probe's metric is degenerate by construction: the bounds of every proportion, accuracy,
#: F1, AUC and rank or linear correlation the probes report (0 and 1, and -1 for correlations). There every row
#: agrees (each prediction right, or each pair in order), so every resample repeats the value and the 95%
#: interval is the single point [value, value]; on the synthetic table the period-century and zero-shot
#: accuracies are exactly 1.0 (so `linear` is run on `subject`, which it cannot predict perfectly). Anywhere
#: else a zero-width "95%" interval means the resampling did not happen or did not vary (e.g. a bootstrap
#: that returns the point estimate), and the test refuses it.
DEGENERATE_VALUES = (-1.0, 0.0, 1.0)


def degenerate_by_construction(metric: dict) -> bool:
    lo, hi = metric["ci"]
    return metric["value"] in DEGENERATE_VALUES and lo == hi == metric["value"]


def test_every_registered_probe_exists():
    assert set(available()) == set(PROBES), f"missing probe modules: {set(PROBES) - set(available())}"


@pytest.mark.parametrize("name", sorted(PROBES))
def test_probe_conformance(name, labelled_store):
    probe = get_probe(name)
    assert probe.NAME == name
    assert issubclass(probe.Config, ProbeConfig)
    assert getattr(probe.run, "__wrapped__", None) is not None, "run must be @probe_threads"
    cfg = probe.Config.from_dict({"table": "art", **OPTIONS[name]})
    with store.open(labelled_store) as s:
        result = probe.run(s, cfg)
        again = probe.run(s, cfg)
    assert isinstance(result, Result)
    data = json.loads(result.to_json())
    assert set(data) >= {"probe", "tables", "config", "n", "metrics", "baseline", "per_class"}
    assert data["probe"] == name and "art" in data["tables"] and data["n"] > 0
    assert data["metrics"], "a probe must report at least one metric"
    for key, metric in data["metrics"].items():
        lo, hi = metric["ci"]
        assert lo <= metric["value"] <= hi or np.isclose(lo, metric["value"]) or np.isclose(hi, metric["value"])
        if not degenerate_by_construction(metric):
            assert lo < hi, f"{name}: {key} = {metric['value']} has a zero-width 95% interval {metric['ci']}"
    assert data["baseline"], "a probe must report a chance or majority baseline"
    assert json.loads(again.to_json()) == data, "results must be reproducible bit for bit"
    with pytest.raises(ValueError):
        probe.Config.from_dict({"table": "art", "no_such_option": 1})


@pytest.mark.parametrize("probe", ["linear", "knn"])
def test_a_label_whose_classes_are_all_rarer_than_min_count_is_one_clear_error(probe, labelled_store):
    """240 rows in 4 styles of 60: min_count 61 leaves no class (linear used to fail inside scikit-learn)."""
    from artlens.probes.data import ProbeDataError
    from artlens.probes.registry import get_probe

    module = get_probe(probe)
    label = {"linear": {"label": "style"}, "knn": {"labels": ("style",)}}[probe]
    with store.open(labelled_store) as s, pytest.raises(ProbeDataError, match="min_count=61|>= 61 rows"):
        module.run(s, module.Config(table="art", min_count=61, **label))
