"""`artlens report`: sections chosen by data, formatted tables, valid figures, clear errors."""
import json
import re

import numpy as np
import pytest

from artlens import store
from artlens.cli.main import main
from artlens.probes.report.sections import fmt, fmt_ci, section_of
from artlens.probes.result import Result
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def linear_result():
    r = Result("linear", ["art"], {"table": "art", "label": "style", "group": "artist", "folds": 5}, n=90)
    r.add("accuracy", 0.71234, (0.65, 0.77), 0.3333)
    r.add("balanced_accuracy", 0.7, (0.64, 0.761), 1 / 3)
    r.add("macro_f1", 0.69876, (0.6, 0.75), 0.16)
    classes = ["Baroque", "Impressionism", "Cubism"]
    r.per_class = {c: {"precision": 0.7, "recall": 0.6 + i / 10, "f1": 0.65 + i / 10, "support": 30}
                   for i, c in enumerate(classes)}
    r.details = {"confusion": {"labels": classes, "matrix": [[20, 6, 4], [5, 21, 4], [2, 3, 25]]},
                 "chosen_C": [1.0, 10.0], "classes": 3, "grouped_by": "artist"}
    return r


def separability_result():
    rng = np.random.default_rng(0)
    r = Result("separability", ["ai", "human"], {"table": "ai", "against": "human",
                                                 "holdout_by": "generator"}, n=120)
    r.add("auc", 0.9512, (0.93, 0.97), 0.5)
    r.per_class = {"dalle": {"auc": 0.91, "support": 40}, "midjourney": {"auc": 0.97, "support": 40},
                   "sd": {"auc": 0.88, "support": 40}}
    r.details = {"pca": {"x": rng.normal(size=120).tolist(), "y": rng.normal(size=120).tolist(),
                         "set": ["ai"] * 60 + ["human"] * 60, "explained": [0.21, 0.09]}}
    return r


def regression_result():
    rng = np.random.default_rng(1)
    truth = rng.integers(1, 6, 80).astype(float)
    r = Result("regression", ["ai"], {"table": "ai", "target": "defects", "group": "prompt"}, n=80)
    r.add("spearman", 0.4321, (0.3, 0.55), 0.0)
    r.add("mae", 1.23456, (1.1, 1.4), 1.5)
    r.details = {"scatter": {"y_true": truth.tolist(), "y_pred": (truth * 0.5 + rng.normal(size=80)).tolist()}}
    return r


def knn_result():
    r = Result("knn", ["art"], {"table": "art", "labels": ["style", "period"], "k": 10}, n=90)
    r.add("style.knn_accuracy", 0.62, (0.55, 0.69), 0.3333)
    r.add("style.purity", 0.58, (0.52, 0.64), 0.3333)
    r.add("period.knn_accuracy", 0.41, (0.35, 0.47), 0.25)
    r.details = {"ranking": ["style", "period"], "k": 10}
    return r


def mystery_result():
    """An unknown probe with odd details: a malformed confusion matrix, a NaN metric, a bare-number metric."""
    r = Result("mystery", ["art"], {"table": "art", "label": "frame_colour"}, n=12)
    r.add("weirdness", 3.5, (2.0, 5.0))
    r.add("share", 0.25, (0.2, 0.3))
    r.add("undefined", float("nan"), (float("nan"), float("nan")))
    r.details = {"blob": {"nested": [1, 2, 3]}, "confusion": {"labels": ["a", "b"], "matrix": [[1, 2, 3]]}}
    return r


def make_store(path, results):
    TableWriter(path, TableEntry(name="art", model="ViT-B-32", pretrained="openai", preprocess="p", dim=4)).finish()
    with store.open(path) as s:
        for i, r in enumerate(results):
            s.save_result(f"{i:02d}_{r.probe}", r.to_dict())
    return path


RESULTS = [linear_result, separability_result, regression_result, knn_result, mystery_result]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    results = [make() for make in RESULTS]
    make_store(root / "store", results)
    code = main(["report", "--store", str(root / "store"), "--out", str(root / "out"), "--title", "Test report"])
    return code, root, results


def test_report_files_mention_every_metric_formatted(report):
    code, root, results = report
    assert code == 0
    html, md = (root / "out" / "index.html").read_text(), (root / "out" / "report.md").read_text()
    assert "<style>" in html and "Test report" in html and "Test report" in md
    for result in results:
        for name, metric in result.metrics.items():
            for text in (html, md):
                assert name in text
                assert fmt(metric.value) in text and fmt_ci(metric.ci) in text
    assert "0.712" in md and "[0.650, 0.770]" in md and "1.235" in md and "| 90 |" in md
    assert "table: ai · against: human · holdout: generator" in md  # one-line config summary
    assert "ViT-B-32" in md and "not in catalog" in md  # tables from the catalog view
    saved = json.loads((root / "out" / "results.json").read_text())
    assert sorted(r["probe"] for r in saved) == sorted(r.probe for r in results)


def test_every_referenced_png_exists_and_is_valid(report):
    _, root, _ = report
    out = root / "out"
    html_refs = re.findall(r'<img src="([^"]+)"', (out / "index.html").read_text())
    md_refs = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (out / "report.md").read_text())
    assert html_refs == md_refs and len(html_refs) >= 8
    for ref in html_refs:
        data = (out / ref).read_bytes()
        assert len(data) > 1000 and data.startswith(PNG_MAGIC), ref
    kinds = {ref.rsplit(".", 2)[-2] for ref in html_refs}
    assert {"confusion", "pca", "per_class", "scatter", "forest", "lift"} <= kinds


def test_sections_in_order_and_unknown_probes_in_other(report):
    _, root, _ = report
    md = (root / "out" / "report.md").read_text()
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert headings == ["Human vs AI", "Style", "Human ratings", "Grouping", "Other"]
    html_headings = re.findall(r'<h2 id="[^"]+">([^<]+)</h2>', (root / "out" / "index.html").read_text())
    assert html_headings == headings
    other = md.split("## Other")[1]
    assert "mystery" in other and "weirdness" in other and "linear" not in other
    assert "| undefined | n/a | n/a | n/a | 12 |" in other and "mystery__art__label=frame_colour.forest.png" in other
    assert "2 metric(s) off the unit scale or undefined are in the table only" in other
    assert ".confusion.png" not in other  # the malformed matrix is skipped, not drawn wrongly


@pytest.mark.parametrize("probe, config, details, section", [
    ("zero-shot", {"label": "subject"}, {}, "Content and scene"),
    ("linear", {"label": "genre"}, {}, "Content and scene"),
    ("linear", {"label": "period"}, {}, "Period"),
    ("period", {"column": "date"}, {}, "Period"),
    ("rsa", {"label": "style"}, {}, "Style"),
    ("rsa", {"label": "defects"}, {}, "Human ratings"),
    ("rsa", {"label": "x"}, {"numeric": True}, "Human ratings"),
    ("linear", {"label": "generative_model"}, {}, "Other"),
    ("knn", {"labels": ["style", "period"]}, {}, "Grouping"),
])
def test_section_rules(probe, config, details, section):
    assert section_of({"probe": probe, "config": config, "details": details}) == section


def test_figures_are_deterministic(tmp_path, report):
    _, root, _ = report
    assert main(["report", "--store", str(root / "store"), "--out", str(tmp_path / "again")]) == 0
    for png in (root / "out" / "figures").glob("*.png"):
        assert (tmp_path / "again" / "figures" / png.name).read_bytes() == png.read_bytes(), png.name


def test_empty_or_missing_store_is_a_clear_error(tmp_path, capsys):
    TableWriter(tmp_path / "empty", TableEntry(name="t", model="m", pretrained="p", preprocess="p", dim=4)).finish()
    assert main(["report", "--store", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no probe results in" in err and "artlens probe" in err
    assert not (tmp_path / "out" / "index.html").exists()
    assert main(["report", "--store", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    assert "no store at" in capsys.readouterr().err
