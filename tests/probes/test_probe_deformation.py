"""The `deformation` probe: shift, detectability, label stability, invariance and human ratings, on a real
perturbed store (tiny open_clip model) and on synthetic deformation tables whose answers are known."""
import io

import numpy as np
import pytest

from artlens import store
from conftest import TINY_MODEL, write_tar
from deformfactory import write_deformed
from artlens.cli.main import main
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.extract.run import run_extract
from artlens.pipeline.perturb.run import PerturbConfig, run_perturb
from artlens.pipeline.demo.paintings import SUBJECTS, render_painting
from artlens.probes.data import ProbeDataError
from artlens.probes.deformation import Config, run
from artlens.probes.report import write_report
from artlens.probes.runner import run_probe
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter

STYLES = ("pointillist", "impasto", "geometric", "wash")


def probe(root, **options):
    with store.open(root) as s:
        return run(s, Config.from_dict({"table": "art", "n_boot": 100, **options}))


# ------------------------------------------------------------------ real deformations, tiny model
@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("deform-tiny")
    members = []
    for i in range(12):
        buf = io.BytesIO()
        render_painting(STYLES[i % 4], list(SUBJECTS)[i % 5], "vivid", i, (96, 80)).save(buf, "PNG")
        members.append((f"p{i:02d}.png", buf.getvalue()))
    shards = write_tar(root / "shards" / "00000.tar", members).parent
    spec = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)
    run_extract(ExtractConfig(shards=str(shards), store=str(root / "store"), table="art", model=spec, workers=0,
                              progress=False), loaded=tiny_model)
    run_perturb(PerturbConfig(shards=str(shards), store=str(root / "store"), table="art",
                              deformations=("blur", "noise"), workers=0, progress=False), loaded=tiny_model)
    return root / "store"


def test_on_the_tiny_model_shift_grows_with_severity_and_strong_blur_and_noise_are_detectable(tiny_store):
    result = probe(tiny_store, folds=4)
    m, grid = result.metrics, result.details["grid"]
    assert result.n == 12 and result.tables == ["art", "art_deformed"]
    for name in ("blur", "noise"):
        shift = [c["shift"]["value"] for c in grid if c["deformation"] == name]
        assert len(shift) == 5 and shift[4] > shift[0] >= 0
        assert m[f"auc.{name}"].value >= result.baseline[f"auc.{name}"] == 0.5
    assert m["shift.all.s5"].value > m["shift.all.s3"].value > m["shift.all.s1"].value
    assert [r["rank"] for r in result.details["invariance"]] == [1, 2]


# ------------------------------------------------------------------ synthetic tables with known answers
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """`art` (120 paintings, 3 styles, 20 artists in 10 workshops), `art_deformed` (blur weak, noise strong), `prompts` (style
    centres), `rated` (same model, `defects` along the deformation direction), `pastiche` (another model)."""
    root = tmp_path_factory.mktemp("deform-syn")
    rng = np.random.default_rng(1)
    dim, n = 16, 120
    centres = rng.normal(size=(3, dim))
    style = np.arange(n) % 3
    X = centres[style] + 0.7 * rng.normal(size=(n, dim))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    keys = [f"k{i:03d}" for i in range(n)]
    rows = [{"key": k, "shard": "syn", "style": f"s{style[i]}", "artist": f"a{i % 20}", "workshop": f"w{i % 10}",
             "dup_group": f"d{i // 2}"}
            for i, k in enumerate(keys)]
    clean = TableWriter(root, TableEntry(name="art", model="m", pretrained="p", preprocess="x", dim=dim))
    clean.commit("syn", rows, X, [])
    clean = clean.finish()
    write_deformed(root, clean, keys, X, deformations=("blur", "noise"), strength=0.12)
    text = TableWriter(root, TableEntry(name="prompts", kind="text", model="m", pretrained="p", preprocess="t",
                                        dim=dim))
    text.commit("p", [{"key": f"s{c}", "shard": "p", "label": f"s{c}"} for c in range(3)],
                (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32), [])
    text.finish()
    with store.open(root) as s:
        pairs = s.sql("SELECT d.embedding AS d, c.embedding AS c FROM art_deformed d JOIN art c USING (key)")
    direction = (np.asarray(pairs.column("d").to_pylist()) - np.asarray(pairs.column("c").to_pylist())).mean(axis=0)
    R = rng.normal(size=(80, dim))
    R = (R / np.linalg.norm(R, axis=1, keepdims=True)).astype(np.float32)
    defects = R @ direction / np.linalg.norm(direction) + 0.05 * rng.normal(size=80)
    for name, model in (("rated", "m"), ("pastiche", "OpenAI CLIP ViT-L/14@336px")):
        writer = TableWriter(root, TableEntry(name=name, model=model, pretrained="p", preprocess="x", dim=dim))
        writer.commit("r", [{"key": f"r{i}", "shard": "r", "defects": float(v)} for i, v in enumerate(defects)], R, [])
        writer.finish()
    return root


def test_known_shift_detectability_and_flips(synthetic):
    result = probe(synthetic, label="style", group="artist", texts="prompts")
    m, base = result.metrics, result.baseline
    with store.open(synthetic) as s:
        X = np.asarray(s.sql("SELECT embedding FROM art").column(0).to_pylist(), float)
    S = X @ X.T
    assert base["shift.blur"] == pytest.approx(1 - (S.sum() - np.trace(S)) / (120 * 119))  # between paintings
    assert m["shift.noise"].value > m["shift.all.s3"].value > m["shift.all.s1"].value > 0
    assert m["auc.noise"].value > 0.9 and m["auc.all.s5"].value > m["auc.all.s1"].value
    grid = {(c["deformation"], c["severity"]): c for c in result.details["grid"]}
    for name in ("blur", "noise"):
        assert grid[(name, 5)]["flip"]["value"] > grid[(name, 1)]["flip"]["value"]
        assert grid[(name, 5)]["accuracy"] < grid[(name, 1)]["accuracy"]
        assert 0 < base[f"flip.{name}"] < 1 and f"zs_flip.{name}" in m
    assert set(result.per_class) == {"flip rate (linear)", "flip rate (zero-shot)", "detectability AUC",
                                     "invariance ranking"}
    # as strong in embedding space, but noise is twice as visible (deformfactory): noise is the more ignored
    ranking = result.details["invariance"]
    assert [r["deformation"] for r in ranking] == ["noise", "blur"]
    assert ranking[0]["ratio"] == pytest.approx(m["shift.noise"].value / ranking[0]["visibility"])


def test_two_group_columns_join_their_groups(synthetic):
    """Artists a_j and a_j+10 share workshop w_j: grouped by artist and workshop, the 20 artists are 10
    groups. Groups are named by the first column's values, so grouped by workshop and artist, folds and
    resamples are exactly those of the workshops alone."""
    joined = probe(synthetic, group=["artist", "workshop"])
    assert joined.details["grouped_by"] == ["artist", "workshop"] and joined.details["n_groups"] == 10
    both = probe(synthetic, label="style", group=["workshop", "artist"])
    workshop = probe(synthetic, label="style", group="workshop")
    assert both.details["n_groups"] == workshop.details["n_groups"] == 10
    assert {k: (m.value, m.ci) for k, m in both.metrics.items()} == {
        k: (m.value, m.ci) for k, m in workshop.metrics.items()}


def test_near_duplicate_pairs_split_by_the_folds_are_counted(synthetic):
    """Paintings 2j and 2j+1 share a dup_group: ungrouped folds split some pairs, grouped by dup_group none."""
    free = probe(synthetic, label="style")
    assert free.details["straddling_duplicates"] > 0
    assert probe(synthetic, label="style", group="dup_group").details["straddling_duplicates"] == 0
    assert probe(synthetic).details["straddling_duplicates"] is None    # no label: no classifier folds


def test_ratings_follow_the_deformation_direction_and_other_models_are_refused(synthetic, capsys):
    result = probe(synthetic, ratings_table="rated", ratings_column="defects", permutations=199)
    rho = result.metrics["ratings.rho"]
    assert rho.value > 0.5 and rho.ci[0] > 0 and result.baseline["ratings.rho"] == 0.0
    assert result.details["ratings"]["pooled"]["p_value"] < 0.01
    with pytest.raises(ProbeDataError, match="was not embedded by the model of 'art_deformed'.*model"):
        probe(synthetic, ratings_table="pastiche", ratings_column="defects")
    assert main(["probe", "deformation", "--store", str(synthetic), "--table", "art", "--ratings-table",
                 "pastiche", "--ratings-column", "defects"]) == 2
    assert "a direction from one embedding space means nothing in another" in capsys.readouterr().err


def test_refuses_a_table_that_is_not_its_deformation_table(synthetic):
    with pytest.raises(ProbeDataError, match="'prompts' is not a deformation table of 'art'"):
        probe(synthetic, deformed="prompts")


def test_report_has_a_deformations_section_with_its_figures(synthetic, tmp_path):
    run_probe(synthetic, "deformation", {"table": "art", "label": "style", "n_boot": 50})
    index = write_report(synthetic, tmp_path / "report")
    html, md = index.read_text(), (tmp_path / "report" / "report.md").read_text()
    assert "Deformations" in html and "## Deformations" in md and "flip rate (linear)" in md
    figures = sorted(p.name.split(".")[-2] for p in (tmp_path / "report" / "figures").glob("deformation__*.png"))
    assert {"deformation-shift", "deformation-auc", "deformation-flip", "deformation-invariance"} <= set(figures)
