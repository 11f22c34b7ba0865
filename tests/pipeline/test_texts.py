"""`artlens texts`: prompt sets (YAML, CSV) → text embeddings of the tiny model → a store table of kind "text"."""
import dataclasses
import importlib.resources
import sys
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import yaml

import imagefactory as f
from artlens import store
from conftest import REPO, TINY_MODEL, write_tar
from artlens.cli.main import main
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.extract.run import run_extract
from artlens.pipeline.demo.paintings import STYLES
from artlens.pipeline.texts import PromptsError, TextsConfig, TextsError, embed_prompts, load_prompts
from artlens.store.compat import IncompatibleError, check_compatible
from artlens.store.catalog import TableEntry

SPEC = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)
STYLE_SET = {
    "templates": ["a painting in the style of {}.", "{} art."],
    "classes": {
        "Impressionism": ["impressionism", "impressionist"],
        "Baroque": "baroque",
        "indoor": {"templates": ["a painting of an {} scene.", "an {} view.", "{}"], "names": ["interior"]},
    },
}


def write(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
    return path


@pytest.fixture
def embed(tmp_path, tiny_model):
    """embed(prompts_file, table='styles', **config) with the session's tiny model, into tmp_path/store."""
    def run(prompts, table="styles", **kwargs):
        cfg = TextsConfig(prompts=str(prompts), store=str(tmp_path / "store"), table=table, model=SPEC, **kwargs)
        return embed_prompts(cfg, loaded=tiny_model)
    return run


def image_table(tmp_path, table, seed):
    """An image table of 2 JPEGs embedded by the tiny model with seeded random weights."""
    shards = write_tar(tmp_path / "shards" / "00000.tar", [("a.jpg", f.jpeg()), ("b.jpg", f.jpeg(color=(0, 0, 255)))])
    spec = dataclasses.replace(SPEC, seed=seed)
    cfg = ExtractConfig(shards=str(shards.parent), store=str(tmp_path / "store"), table=table, model=spec,
                        workers=0, progress=False)
    return run_extract(cfg)


def rows(tmp_path, query):
    with store.open(tmp_path / "store") as s:
        return s.sql(query).to_pylist()


# ------------------------------------------------------------------ parsing
def test_yaml_every_name_times_every_template_and_class_templates_override(tmp_path):
    prompts = load_prompts(write(tmp_path / "p.yaml", STYLE_SET))
    assert len(prompts) == 2 * 2 + 1 * 2 + 1 * 3
    by_key = {p.key: p for p in prompts}
    assert by_key["Impressionism|0|impressionist"].prompt == "a painting in the style of impressionist."
    assert by_key["Baroque|1|baroque"].prompt == "baroque art."
    assert by_key["indoor|2|interior"].prompt == "interior"
    assert by_key["indoor|0|interior"].template == "a painting of an {} scene."
    assert {p.label for p in prompts} == {"Impressionism", "Baroque", "indoor"}


def test_csv_templates_and_literal_prompts(tmp_path):
    templates = load_prompts(write(tmp_path / "t.csv", "label,template\nBaroque,a {} painting.\n"
                                                       "Baroque,\"{}, with drama\"\n\nCubism,{} art\n"))
    assert [(p.key, p.prompt) for p in templates] == [
        ("Baroque|0|Baroque", "a Baroque painting."), ("Baroque|1|Baroque", "Baroque, with drama"),
        ("Cubism|0|Cubism", "Cubism art")]
    literal = load_prompts(write(tmp_path / "l.csv", "label,prompt\ncat,a photo of a cat\ncat,a kitten\n"))
    assert [(p.key, p.template, p.name, p.prompt) for p in literal] == [
        ("cat|0|", "a photo of a cat", "", "a photo of a cat"), ("cat|1|", "a kitten", "", "a kitten")]


YAML_ERRORS = {
    "unknown top-level key": ({"templates": ["{}"], "classes": {"a": "x"}, "colour": 1}, "unknown key(s) colour"),
    "unknown class key": ({"templates": ["{}"], "classes": {"a": {"names": "x", "prompt": "y"}}},
                          "class 'a': unknown key(s) prompt"),
    "template without {}": ({"templates": ["a painting"], "classes": {"a": "x"}}, "'a painting' has no '{}'"),
    "class template without {}": ({"classes": {"a": {"names": "x", "templates": ["nope"]}}}, "has no '{}'"),
    "empty class list": ({"templates": ["{}"], "classes": {"a": []}}, "class 'a' names: empty"),
    "empty class": ({"templates": ["{}"], "classes": {"a": None}}, "class 'a' names: empty"),
    "class mapping without names": ({"templates": ["{}"], "classes": {"a": {"templates": ["{}"]}}},
                                    "class 'a' names: empty"),
    "blank name": ({"templates": ["{}"], "classes": {"a": ["x", " "]}}, "is not non-empty text"),
    "non-text name": ({"templates": ["{}"], "classes": {"a": [3]}}, "3 is not non-empty text"),
    "no classes": ({"templates": ["{}"]}, "'classes' must be a non-empty mapping"),
    "empty classes": ({"templates": ["{}"], "classes": {}}, "'classes' must be a non-empty mapping"),
    "no templates": ({"classes": {"a": "x"}}, "class 'a' has no templates"),
    "empty templates": ({"templates": [], "classes": {"a": "x"}}, "top-level templates: empty"),
    "duplicate name": ({"templates": ["{}"], "classes": {"a": ["x", "x"]}}, "has the prompt 'x' more than once"),
    "ambiguous key": ({"templates": ["{}"], "classes": {"a|0": "x|y", "a": "0|x|y"}}, "same key"),
    "not a mapping": ("- just\n- a list\n", "expected a mapping"),
    "empty file": ("", "expected a mapping"),
    "unquoted {} template": ("templates:\n  - {} art\nclasses: {a: x}\n", "invalid YAML at line"),
    "map as template": ("templates:\n  - {}\nclasses: {a: x}\n", "quote a template that starts with '{}'"),
}


@pytest.mark.parametrize("case", YAML_ERRORS)
def test_yaml_errors_name_the_file_and_the_problem(tmp_path, case):
    content, problem = YAML_ERRORS[case]
    path = write(tmp_path / "bad-set.yaml", content)
    with pytest.raises(PromptsError) as err:
        load_prompts(path)
    assert str(path) in str(err.value) and problem in str(err.value)
    assert "\n" not in str(err.value)


CSV_ERRORS = {
    "bad header": ("class,text\na,{}\n", "header must be 'label,template' or 'label,prompt', got 'class,text'"),
    "template without {}": ("label,template\na,{}\nb,a painting\n", "line 3: template 'a painting' has no '{}'"),
    "extra field": ("label,template\na,a {}, b\n", "line 2: expected 2 fields"),
    "missing field": ("label,prompt\nonly-label\n", "line 2: expected 2 fields"),
    "empty label": ("label,template\n ,{}\n", "line 2: empty label"),
    "empty prompt": ("label,prompt\na, \n", "line 2: empty prompt"),
    "header only": ("label,template\n", "no prompts"),
    "empty file": ("", "header must be"),
    "duplicate row": ("label,prompt\na,x\na,x\n", "has the prompt 'x' more than once"),
}


@pytest.mark.parametrize("case", CSV_ERRORS)
def test_csv_errors_name_the_file_and_the_problem(tmp_path, case):
    content, problem = CSV_ERRORS[case]
    path = write(tmp_path / "bad-set.csv", content)
    with pytest.raises(PromptsError) as err:
        load_prompts(path)
    assert str(path) in str(err.value) and problem in str(err.value)


def test_unknown_file_type_and_missing_file(tmp_path):
    with pytest.raises(PromptsError, match=r"unknown prompts file type '\.txt'"):
        load_prompts(write(tmp_path / "p.txt", "label,prompt\na,b\n"))
    with pytest.raises(PromptsError, match="does not exist .*sample-style"):
        embed_prompts(TextsConfig(prompts=str(tmp_path / "nope.yaml"), store=str(tmp_path / "s"), table="t",
                                  model=SPEC))


def test_bundled_sample_style_set_covers_the_sample_corpus_styles_and_is_packaged():
    bundled = importlib.resources.files("artlens.pipeline.prompts") / "sample-style.yaml"
    prompts = load_prompts(Path(str(bundled)))
    assert {p.label for p in prompts} == set(STYLES)
    assert len(prompts) >= 2 * len(STYLES)
    if sys.version_info >= (3, 11):
        import tomllib
        package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
        assert "*.yaml" in package_data["*"]


# ------------------------------------------------------------------ embedding and the store
def test_embeddings_are_the_models_own_normalised_text_features(tmp_path, embed, tiny_model):
    summary = embed(write(tmp_path / "p.yaml", STYLE_SET), batch_size=4)  # several batches
    assert (summary.prompts, summary.labels, summary.table_rows) == (9, 3, 9)
    got = {r["prompt"]: np.array(r["embedding"]) for r in rows(tmp_path, "SELECT prompt, embedding FROM styles")}
    assert len(got) == 9
    assert np.allclose([np.linalg.norm(v) for v in got.values()], 1.0, atol=1e-5)
    tokenizer = open_clip.get_tokenizer("artlens-tiny-vit")
    for prompt in ("baroque art.", "a painting in the style of impressionist."):
        with torch.inference_mode():
            ref = tiny_model.model.encode_text(tokenizer([prompt]))
        ref = torch.nn.functional.normalize(ref, dim=-1)[0].numpy()
        np.testing.assert_allclose(got[prompt], ref, atol=1e-5)


def test_catalog_entry_matches_an_image_table_of_the_same_model(tmp_path, embed, extract):
    extract(write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg())]).parent, table="images",
            store=tmp_path / "store")
    prompts = write(tmp_path / "p.yaml", STYLE_SET)
    embed(prompts)
    with store.open(tmp_path / "store") as s:
        text, image = s.entry("styles"), s.entry("images")
        assert s.sql("SELECT kind FROM catalog WHERE name = 'styles'").column(0).to_pylist() == ["text"]
    assert (text.kind, image.kind) == ("text", "image")
    for name in ("model", "model_ref", "pretrained", "checkpoint_sha256", "dim", "dtype"):
        assert getattr(text, name) == getattr(image, name), name
    assert text.preprocess == "open_clip tokenizer artlens-tiny-vit"
    assert text.source == str(prompts.resolve()) and text.rows == 9 and text.dim == 32


def test_sql_over_the_text_table(tmp_path, embed):
    embed(write(tmp_path / "p.csv", "label,template\nBaroque,a {} painting.\nCubism,{} art\n"))
    assert rows(tmp_path, "SELECT label, prompt FROM styles ORDER BY label") == [
        {"label": "Baroque", "prompt": "a Baroque painting."}, {"label": "Cubism", "prompt": "Cubism art"}]
    typed = rows(tmp_path, "SELECT DISTINCT typeof(embedding) AS t, typeof(template) AS tt, typeof(name) AS tn "
                           "FROM styles")
    assert typed == [{"t": "FLOAT[32]", "tt": "VARCHAR", "tn": "VARCHAR"}]
    cols = rows(tmp_path, "SELECT * FROM styles LIMIT 1")[0]
    assert list(cols) == ["key", "shard", "label", "template", "name", "prompt", "embedding"]


def test_rerun_replaces_the_files_part_and_other_files_add_theirs(tmp_path, embed, monkeypatch):
    prompts = write(tmp_path / "p.yaml", STYLE_SET)
    embed(prompts)
    write(prompts, {"templates": ["a {} painting."], "classes": {"Baroque": "baroque"}})
    monkeypatch.chdir(tmp_path)
    assert embed(Path("p.yaml")).table_rows == 1  # a relative path names the same part
    assert rows(tmp_path, "SELECT key, prompt FROM styles") == [
        {"key": "Baroque|0|baroque", "prompt": "a baroque painting."}]
    other = write(tmp_path / "more.csv", "label,prompt\nCubism,a cubist painting\n")
    assert embed(other).table_rows == 2
    assert embed(other).table_rows == 2
    assert embed(other, overwrite=True).table_rows == 1


def test_refuses_to_write_into_an_image_table(tmp_path, embed, extract):
    extract(write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg())]).parent, table="images",
            store=tmp_path / "store")
    with pytest.raises(TextsError, match="'images' .* is an 'image' table, not a text table"):
        embed(write(tmp_path / "p.yaml", STYLE_SET), table="images")


# ------------------------------------------------------------------ --for-table and check_compatible
def test_for_table_refuses_an_image_table_made_with_other_weights(tmp_path, embed):
    image_table(tmp_path, "images_seed1", seed=1)
    with pytest.raises(IncompatibleError) as err:
        embed(write(tmp_path / "p.yaml", STYLE_SET), for_table="images_seed1")
    msg = str(err.value)
    assert "image table 'images_seed1'" in msg and "text table 'styles'" in msg
    assert "pretrained: image table has 'random:seed=1', text table has 'random:seed=0'" in msg
    with store.open(tmp_path / "store") as s:
        assert "styles" not in s.tables()  # refused before anything was written


def test_for_table_accepts_the_same_model(tmp_path, embed):
    image_table(tmp_path, "images", seed=0)
    summary = embed(write(tmp_path / "p.yaml", STYLE_SET), for_table="images")
    assert summary.table_rows == 9 and "same model" in summary.lines()[-1]
    with store.open(tmp_path / "store") as s:
        check_compatible(s.entry("images"), s.entry("styles"))


def test_check_compatible_compares_model_weights_checkpoint_and_dim():
    image = TableEntry(name="img", kind="image", model="m", pretrained="p", checkpoint_sha256="abc", dim=32,
                       preprocess="resize")
    text = dataclasses.replace(image, name="txt", kind="text", preprocess="open_clip tokenizer m")
    check_compatible(image, text)  # preprocess differs by nature and is not compared
    for field, value in (("model", "m2"), ("pretrained", "q"), ("checkpoint_sha256", "def"), ("dim", 64)):
        with pytest.raises(IncompatibleError, match=f"{field}: image table has"):
            check_compatible(image, dataclasses.replace(text, **{field: value}))
    with pytest.raises(IncompatibleError, match="'txt' is a 'image' table, not a 'text' table"):
        check_compatible(image, dataclasses.replace(text, kind="image"))


# ------------------------------------------------------------------ command line
def texts_args(store_dir, prompts, *extra):
    return ["texts", "--store", str(store_dir), "--table", "styles", "--prompts", str(prompts),
            "--model", TINY_MODEL, "--pretrained", "random", "--device", "cpu", *extra]


def test_cli_exit_codes(tmp_path, capsys):
    assert main(texts_args(tmp_path / "st", "sample-style", "--batch-size", "5")) == 0
    assert "32 prompts for 4 labels" in capsys.readouterr().out
    bad = write(tmp_path / "bad.yaml", {"templates": ["no placeholder"], "classes": {"a": "x"}})
    assert main(texts_args(tmp_path / "st", bad)) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("artlens texts: error:") and str(bad) in err
    image_table(tmp_path, "images_seed1", seed=1)
    assert main(texts_args(tmp_path / "store", "sample-style", "--for-table", "images_seed1")) == 2
    assert "images_seed1" in capsys.readouterr().err
    assert main(texts_args(tmp_path / "store", "sample-style", "--for-table", "nope")) == 2
    assert "no table 'nope'" in capsys.readouterr().err
    assert main(texts_args(tmp_path / "store", "sample-style", "--seed", "1", "--for-table", "images_seed1")) == 0
