"""`artlens perturb`: deterministic deformations, a linked table that joins its clean table, failures kept,
resume without duplicates, contact sheets. Real components throughout: tiny open_clip model, Parquet, DuckDB."""
import io
import subprocess
import sys

import pytest
from PIL import Image

import imagefactory as f
from artlens import store
from conftest import REPO, TINY_MODEL, write_tar
from deformfactory import digest_of_suite, painting
from artlens.cli.main import main
from artlens.pipeline.perturb.contactsheet import sheet_size
from artlens.pipeline.perturb.deformations import DEFORMATIONS, deform
from artlens.pipeline.perturb.suite import SuiteError, load_suite
from artlens.pipeline.perturb.run import PerturbConfig, run_perturb
from artlens.store.catalog import CatalogError
from artlens.store.index import build_index

SUBSET = ("blur", "noise")


def png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


# ------------------------------------------------------------------ deformations
def test_every_deformation_at_every_severity_is_a_same_size_rgb_image_and_grows_more_visible():
    from artlens.pipeline.perturb.visibility import ssim

    image = painting(1, (112, 96))
    suite = load_suite("default")
    assert set(suite.names) == set(DEFORMATIONS)  # the bundled suite covers every registered deformation
    for spec in suite.deformations:
        outs = [deform(image, spec.name, spec.level(s), "k", dict(spec.options)) for s in range(1, 6)]
        assert all(o.mode == "RGB" and o.size == image.size for o in outs), spec.name
        scores = [ssim(image, o, suite.ssim_side) for o in outs]
        assert scores[0] > scores[4] and scores[4] < 0.98, (spec.name, scores)


def test_the_same_input_gives_the_same_pixels_twice_and_in_another_process():
    image = painting(2)
    here = digest_of_suite(image, "sample-7")
    assert digest_of_suite(image, "sample-7") == here
    assert digest_of_suite(image, "sample-8") != here  # the seed follows the key
    code = ("import sys; sys.path.insert(0, 'tests/fixtures'); from deformfactory import digest_of_suite, painting; "
            "print(digest_of_suite(painting(2), 'sample-7'))")
    other = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert (other.returncode, other.stdout.strip()) == (0, here), other.stderr[-2000:]


def test_bad_suites_are_refused_with_the_reason(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("deformations:\n  blur: {levels: [1, 2, 3, 4]}\n")
    with pytest.raises(SuiteError, match="5 numbers"):
        load_suite(str(bad))
    bad.write_text("deformations:\n  melt: {levels: [1, 2, 3, 4, 5]}\n")
    with pytest.raises(SuiteError, match="unknown deformation 'melt'; deformations: blur"):
        load_suite(str(bad))
    bad.write_text("deformations:\n  swirl: {levels: [1, 2, 3, 4, 5], options: {spin: 2}}\n")
    with pytest.raises(SuiteError, match=r"no option\(s\) \['spin'\]"):
        load_suite(str(bad))
    with pytest.raises(SuiteError, match="not in suite default"):
        load_suite("default").select(["blur", "melt"])
    with pytest.raises(SuiteError, match=r"suite nope does not exist \(bundled suites: default\)"):
        load_suite("nope")


# ------------------------------------------------------------------ the linked table
@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_model):
    """Two shards: 3 paintings + a corrupt JPEG, and a tar cut off inside its third painting; a clean table `t`."""
    from artlens.pipeline.extract.config import ExtractConfig
    from artlens.pipeline.models.spec import ModelSpec
    from artlens.pipeline.extract.run import run_extract

    root = tmp_path_factory.mktemp("perturb")
    members = [(f"p{i}.png", png(painting(i))) for i in range(3)] + [("bad.jpg", f.corrupt_jpeg())]
    write_tar(root / "shards" / "00000.tar", members)
    cut = write_tar(root / "shards" / "00001.tar", [(f"q{i}.png", png(painting(10 + i))) for i in range(3)])
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) - 2048 - 600])  # the end-of-archive blocks and the tail of q2 are gone
    spec = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)
    clean = run_extract(ExtractConfig(shards=str(root / "shards"), store=str(root / "store"), table="t",
                                      model=spec, workers=0, progress=False), loaded=tiny_model)
    assert clean.failures >= 2 and clean.table_rows == 5
    return root


def perturb(corpus, tiny_model, shards=None, **kw):
    kw.setdefault("deformations", SUBSET)
    cfg = PerturbConfig(shards=str(shards or corpus / "shards"), store=str(corpus / "store"), table="t",
                        workers=kw.pop("workers", 0), progress=False, batch_size=kw.pop("batch_size", 7), **kw)
    return run_perturb(cfg, loaded=tiny_model)


def test_linked_table_joins_the_clean_table_with_rows_x_deformations_x_5_and_keeps_failures(corpus, tiny_model):
    summary = perturb(corpus, tiny_model, out_table="linked")
    assert summary.exit_code == 3 and summary.failures >= 2 and summary.paintings == 5
    with store.open(corpus / "store") as s:
        joined = s.sql("SELECT count(*) AS n, count(DISTINCT (d.key, d.deformation, d.severity)) AS uniq, "
                       "min(d.severity) AS lo, max(d.severity) AS hi, min(d.ssim) AS smin, max(d.ssim) AS smax "
                       "FROM linked d JOIN t c ON c.key = d.key").to_pylist()[0]
        clean_rows = s.sql("SELECT count(*) AS n FROM t").column("n")[0].as_py()
        orphans = s.sql("SELECT count(*) AS n FROM linked d ANTI JOIN t c ON c.key = d.key").column("n")[0].as_py()
        failures = s.sql("SELECT key, stage, error FROM failures WHERE \"table\" = 'linked'").to_pylist()
        entry, clean = s.entry("linked"), s.entry("t")
        shift = s.sql("SELECT d.severity, avg(1 - cosine(d.embedding, c.embedding)) AS shift FROM linked d "
                      "JOIN t c USING (key) GROUP BY ALL ORDER BY 1").column("shift").to_pylist()
    assert joined["n"] == joined["uniq"] == clean_rows * len(SUBSET) * 5 and orphans == 0
    assert (joined["lo"], joined["hi"]) == (1, 5) and 0 < joined["smin"] <= joined["smax"] <= 1
    assert {"bad"} <= {r["key"] for r in failures} and any("truncated" in r["error"] for r in failures)
    assert (entry.kind, entry.parent, entry.model, entry.dim) == ("deformation", "t", clean.model, clean.dim)
    assert "deformation suite default" in entry.preprocess and shift[4] > shift[0]
    with pytest.raises(CatalogError, match="deformation' table of 't'"):  # one key names ten rows here
        build_index(corpus / "store", "linked")
    with store.open(corpus / "store") as s, pytest.raises(CatalogError, match="nearest-neighbour"):
        s.neighbors("linked", key="p0")


def test_interrupted_run_resumes_without_duplicates(corpus, tiny_model):
    first = perturb(corpus, tiny_model, shards=corpus / "shards" / "00000.tar", out_table="resumed")
    stale = corpus / "store" / "tables" / "resumed" / ".tmp-1234-part-x.parquet"
    stale.write_bytes(b"half a part")  # what a kill in the middle of a write leaves
    again = perturb(corpus, tiny_model, out_table="resumed", workers=2)
    assert (first.shards_committed, again.shards_skipped, again.shards_committed) == (1, 1, 1)
    assert not stale.exists()
    with store.open(corpus / "store") as s:
        n, uniq = s.sql("SELECT count(*) AS n, count(DISTINCT (key, deformation, severity)) AS u "
                        "FROM resumed").to_pylist()[0].values()
        clean_rows = s.sql("SELECT count(*) AS n FROM t").column("n")[0].as_py()
    assert n == uniq == clean_rows * len(SUBSET) * 5
    with pytest.raises(CatalogError, match="different settings"):  # another suite into the same table
        perturb(corpus, tiny_model, out_table="resumed", deformations=("blur",))


def test_cli_writes_contact_sheets_and_exits_3_when_samples_failed(corpus, capsys):
    args = ["perturb", "--shards", str(corpus / "shards"), "--store", str(corpus / "store"), "--table", "t",
            "--out-table", "sheets", "--deformations", "blur,hue", "--save-examples", "2", "--workers", "0",
            "--device", "cpu", "--no-progress"]
    assert main(args) == 3
    out = capsys.readouterr().out
    folder = corpus / "store" / "results" / "examples" / "sheets"
    assert f"2 contact sheet(s) in {folder}" in out and "failed samples" in out
    sheets = sorted(folder.glob("*.png"))
    assert len(sheets) == 2
    for path in sheets:
        with Image.open(path) as im:
            assert im.size == sheet_size(2) and im.mode == "RGB"


def test_cli_refuses_bad_arguments_with_exit_2(corpus, capsys):
    base = ["perturb", "--shards", str(corpus / "shards"), "--store", str(corpus / "store"), "--device", "cpu",
            "--no-progress", "--workers", "0"]
    assert main(base + ["--table", "t", "--deformations", "blur,melt"]) == 2
    assert "not in suite default" in capsys.readouterr().err
    assert main(base + ["--table", "t", "--out-table", "t"]) == 2
    assert "--out-table must differ" in capsys.readouterr().err
    assert main(base + ["--table", "nope"]) == 2
    assert "no table 'nope'" in capsys.readouterr().err
