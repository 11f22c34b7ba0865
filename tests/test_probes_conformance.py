"""One test, every probe: the shared interface and the JSON result shape other tools rely on.

Runs each registered probe on a small labelled table built from the shared AI-Pastiche embeddings
(imported through `artlens import`), or on synthetic labelled vectors when the shared data is absent.
"""
import json

import numpy as np
import pytest

import store
from probes.config import ProbeConfig
from probes.registry import PROBES, available, get_probe
from probes.result import Result
from store.catalog import TableEntry
from store.writer import TableWriter

#: Minimal options per probe on the synthetic table (columns: style, period, subject, score, source).
OPTIONS = {
    "linear": {"label": "style", "n_boot": 50},
    "knn": {"labels": ("style", "subject"), "n_boot": 50},
    "regression": {"target": "score", "n_boot": 50},
    "period": {"column": "period", "n_boot": 50},
    "separability": {"group": "source", "n_boot": 50},
    "rsa": {"label": "style", "permutations": 99},
    "zero-shot": {"label": "style", "texts": "prompts", "n_boot": 50},
}


@pytest.fixture(scope="module")
def labelled_store(tmp_path_factory):
    """240 vectors in 4 styles × 2 sources with a period string and a continuous score."""
    root = tmp_path_factory.mktemp("probe-store")
    rng = np.random.default_rng(0)
    dim, n = 16, 240
    centres = rng.normal(size=(4, dim))
    style = np.arange(n) % 4
    source = (np.arange(n) // 4) % 2
    X = centres[style] + 0.8 * rng.normal(size=(n, dim)) + 0.5 * source[:, None]
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    periods = ["XV century", "1701 to 1725", "c. 1810", "1890s"]
    rows = [{"key": f"k{i:03d}", "shard": "syn", "style": f"s{style[i]}", "subject": f"t{i % 3}",
             "period": periods[style[i]], "score": float(X[i, 0] + 0.1 * rng.normal()),
             "source": "ai" if source[i] else "human", "artist": f"a{i % 12}"} for i in range(n)]
    writer = TableWriter(root, TableEntry(name="art", model="m", pretrained="p", preprocess="x", dim=dim))
    writer.commit("syn", rows, X, [])
    writer.finish()
    prompt_rows = [{"key": f"s{c}|0|s{c}", "shard": "prompts.yaml", "label": f"s{c}", "template": "{}",
                    "name": f"s{c}", "prompt": f"s{c}"} for c in range(4)]
    text = TableWriter(root, TableEntry(name="prompts", kind="text", model="m", pretrained="p",
                                        preprocess="tokenizer", dim=dim))
    text.commit("prompts.yaml", prompt_rows, (centres / np.linalg.norm(centres, axis=1, keepdims=True))
                .astype(np.float32), [])
    text.finish()
    return root


def test_every_registered_probe_exists():
    assert set(available()) == set(PROBES), f"missing probe modules: {set(PROBES) - set(available())}"


@pytest.mark.parametrize("name", sorted(PROBES))
def test_probe_conformance(name, labelled_store):
    probe = get_probe(name)
    assert probe.NAME == name
    assert issubclass(probe.Config, ProbeConfig)
    assert getattr(probe.run, "__wrapped__", None) is not None, "run must be @single_threaded"
    cfg = probe.Config.from_dict({"table": "art", **OPTIONS[name]})
    with store.open(labelled_store) as s:
        result = probe.run(s, cfg)
        again = probe.run(s, cfg)
    assert isinstance(result, Result)
    data = json.loads(result.to_json())
    assert set(data) >= {"probe", "tables", "config", "n", "metrics", "baseline", "per_class"}
    assert data["probe"] == name and "art" in data["tables"] and data["n"] > 0
    assert data["metrics"], "a probe must report at least one metric"
    for metric in data["metrics"].values():
        lo, hi = metric["ci"]
        assert lo <= metric["value"] <= hi or np.isclose(lo, metric["value"]) or np.isclose(hi, metric["value"])
    assert data["baseline"], "a probe must report a chance or majority baseline"
    assert json.loads(again.to_json()) == data, "results must be reproducible bit for bit"
    with pytest.raises(ValueError):
        probe.Config.from_dict({"table": "art", "no_such_option": 1})
