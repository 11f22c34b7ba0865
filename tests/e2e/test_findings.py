"""The key figures of docs/findings/ai-pastiche-nga are reproduced by independent plain scikit-learn/numpy
code that reads the shared Parquet files directly (not through artlens' store or probes)."""
import json
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy.stats import spearmanr
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold, StratifiedKFold

from conftest import AI_PASTICHE_NGA, REPO, require

RESULTS = REPO / "docs" / "findings" / "ai-pastiche-nga" / "results.json"
EMBEDDING = "ViT-L/14@336px"


def result(probe, table, **config):
    for r in json.loads(RESULTS.read_text()):
        if r["probe"] == probe and r["tables"][0] == table and all(r["config"].get(k) == v for k, v in config.items()):
            return r
    raise AssertionError(f"no {probe} result on {table} with {config} in {RESULTS}")


def read(name, key):
    """Rows sorted by key as text (the probes' order), embeddings as float64."""
    table = pq.read_table(require(AI_PASTICHE_NGA) / name)
    order = np.argsort(np.asarray([str(k) for k in table.column(key).to_pylist()]), kind="stable")
    X = np.asarray(table.column(EMBEDDING).to_pylist(), dtype=np.float64)[order]
    cols = {c: np.asarray(table.column(c).to_pylist(), dtype=object)[order] for c in table.column_names
            if c != EMBEDDING}
    return X, cols


@pytest.fixture(scope="module")
def data():
    if not RESULTS.exists():
        pytest.skip(f"{RESULTS} not generated (make findings)")
    return read("ai_pastiche.parquet", "generated_image"), read("ngd.parquet", "objectid")


@pytest.mark.slow
def test_human_vs_ai_separability_auc(data):
    (ai, _), (ngd, _) = data
    r = result("separability", "ai_pastiche", against="ngd", holdout_by=None)
    C = Counter(r["details"]["chosen_C"]).most_common(1)[0][0]
    X, y = np.vstack([ai, ngd]), np.r_[np.ones(len(ai)), np.zeros(len(ngd))]
    score = np.empty(len(y))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
        model = LogisticRegression(C=C, class_weight="balanced", max_iter=5000).fit(X[train], y[train])
        score[test] = model.decision_function(X[test])
    independent = roc_auc_score(y, score)
    assert independent == pytest.approx(r["metrics"]["auc"]["value"], abs=0.005)
    assert r["metrics"]["auc"]["ci"][0] > 0.95 and r["baseline"]["auc"] == 0.5


@pytest.mark.slow
def test_embeddings_predict_human_authenticity_ratings(data):
    (X, cols), _ = data
    r = result("regression", "ai_pastiche", target="authenticity", group="prompt")
    alpha = float(np.median(r["details"]["chosen_alpha"]))
    y, groups = cols["authenticity"].astype(float), cols["prompt"].astype(str)
    pred = np.empty(len(y))
    for train, test in GroupKFold(5, shuffle=True, random_state=0).split(X, y, groups):
        pred[test] = Ridge(alpha=alpha).fit(X[train], y[train]).predict(X[test])
    independent = spearmanr(y, pred).statistic
    assert independent == pytest.approx(r["metrics"]["spearman_rho"]["value"], abs=0.03)
    assert r["metrics"]["spearman_rho"]["ci"][0] > 0


def test_style_neighbourhood_purity(data):
    (X, cols), _ = data
    r = result("knn", "ai_pastiche", group=None)
    k = r["config"]["k"]
    sims = X @ X.T
    np.fill_diagonal(sims, -np.inf)
    neighbours = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    labels = cols["style"].astype(str)
    purity = (labels[neighbours] == labels[:, None]).mean()
    assert purity == pytest.approx(r["metrics"]["style.purity"]["value"], abs=1e-3)


@pytest.mark.slow
def test_style_linear_probe_grouped_by_prompt(data):
    (X, cols), _ = data
    r = result("linear", "ai_pastiche", label="style", group="prompt")
    C = Counter(r["details"]["chosen_C"]).most_common(1)[0][0]
    y, groups = cols["style"].astype(str), cols["prompt"].astype(str)
    pred = np.empty(len(y), dtype=object)
    for train, test in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(X, y, groups):
        pred[test] = LogisticRegression(C=C, max_iter=2000).fit(X[train], y[train]).predict(X[test])
    independent = accuracy_score(y, pred.astype(str))
    assert independent == pytest.approx(r["metrics"]["accuracy"]["value"], abs=0.03)
    assert r["metrics"]["accuracy"]["value"] > r["baseline"]["accuracy"]
