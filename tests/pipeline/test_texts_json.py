"""`artlens texts` reads CLIP_benchmark's templates + class names files and CuPL's prompt files, by content or
by `prompts_format`, and refuses malformed ones with one line naming the file."""
import json

import numpy as np
import pytest

from artlens import store
from artlens.cli.main import main
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.texts import PromptsError, TextsConfig, embed_prompts, load_prompts
from artlens.errors import UserError
from conftest import TINY_MODEL

TEMPLATES = {"cifar10": ["a photo of a {c}.", "a blurry photo of a {c}."],
             "wikiart": ["a painting in the style of {c}.", "{c} art.", "a \"{c}\" work."]}
CLASSNAMES = {"cifar10": ["airplane", "cat"], "wikiart": ["Impressionism", "Baroque", "Art Nouveau (Modern)"]}
CUPL = {"Impressionism": ["A painting with loose brushwork and light.", "An outdoor scene in dabs of colour."],
        "Baroque": ["A dramatic painting with strong chiaroscuro."]}


def write(path, doc):
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path):
    return write(tmp_path / "templates.json", TEMPLATES), write(tmp_path / "classnames.json", CLASSNAMES)


def test_clip_benchmark_names_times_templates_of_one_dataset(files):
    templates, names = files
    prompts = load_prompts(templates, classnames=str(names), dataset="wikiart")
    assert len(prompts) == 3 * 3
    by_key = {p.key: p for p in prompts}
    p = by_key["Art Nouveau (Modern)|2|Art Nouveau (Modern)"]
    assert (p.label, p.template, p.name, p.prompt) == (
        "Art Nouveau (Modern)", 'a "{c}" work.', "Art Nouveau (Modern)", 'a "Art Nouveau (Modern)" work.')
    assert [q.prompt for q in prompts if q.label == "Baroque"] == [
        "a painting in the style of Baroque.", "Baroque art.", 'a "Baroque" work.']


def test_clip_benchmark_dataset_is_the_one_both_files_share(tmp_path, files):
    templates, _ = files
    names = write(tmp_path / "one.json", {"cifar10": ["airplane", "cat"]})
    assert {p.label for p in load_prompts(templates, classnames=str(names))} == {"airplane", "cat"}
    both = files[1]
    with pytest.raises(PromptsError, match="several datasets .*cifar10, wikiart.*name one with `dataset`"):
        load_prompts(templates, classnames=str(both))
    with pytest.raises(PromptsError, match="no dataset 'imagenet1k' .*cifar10, wikiart") as info:
        load_prompts(templates, classnames=str(both), dataset="imagenet1k")
    assert info.value.argument == "dataset"


def test_cupl_literal_prompts_by_content(tmp_path):
    prompts = load_prompts(write(tmp_path / "cupl.json", CUPL))
    assert [(p.key, p.label, p.name, p.prompt) for p in prompts] == [
        ("Impressionism|0|", "Impressionism", "", "A painting with loose brushwork and light."),
        ("Impressionism|1|", "Impressionism", "", "An outdoor scene in dabs of colour."),
        ("Baroque|0|", "Baroque", "", "A dramatic painting with strong chiaroscuro.")]
    assert all(p.template == p.prompt for p in prompts)


def test_cupl_inside_a_clip_benchmark_file(tmp_path):
    templates = write(tmp_path / "t.json", {"wikiart": {"Baroque": ["a dark dramatic painting"],
                                                        "Impressionism": ["a sunny sketchy painting"]}})
    names = write(tmp_path / "n.json", {"wikiart": ["Impressionism", "Baroque"]})
    prompts = load_prompts(templates, prompts_format="clip-benchmark", classnames=str(names))
    assert [(p.label, p.prompt) for p in prompts] == [("Impressionism", "a sunny sketchy painting"),
                                                     ("Baroque", "a dark dramatic painting")]
    write(names, {"wikiart": ["Impressionism", "Rococo"]})
    with pytest.raises(PromptsError, match="no prompts for class 'Rococo'"):
        load_prompts(templates, prompts_format="clip-benchmark", classnames=str(names))


def test_explicit_format_overrides_the_suffix(tmp_path):
    path = write(tmp_path / "prompts.txt", CUPL)
    with pytest.raises(PromptsError, match=r"unknown prompts file type '\.txt'"):
        load_prompts(path)
    assert len(load_prompts(path, prompts_format="cupl")) == 3
    with pytest.raises(PromptsError, match="unknown prompts_format 'xml'"):
        load_prompts(path, prompts_format="xml")
    with pytest.raises(UserError, match="unknown prompts_format 'xml'"):
        TextsConfig(prompts=str(path), store="s", table="t", prompts_format="xml")


BAD_CUPL = {
    "a list, not an object": (["a", "b"], "a CuPL file is a JSON object .* got list"),
    "empty object": ({}, "got an empty object"),
    "empty class list": ({"cat": []}, "class 'cat': expected a non-empty list of text, got an empty list"),
    "prompts not a list": ({"cat": "a cat"}, "class 'cat': expected a non-empty list of text, got str"),
    "non-string entry": ({"cat": ["a cat", 3]}, "class 'cat': 3 is not non-empty text"),
    "blank entry": ({"cat": ["  "]}, "class 'cat': '  ' is not non-empty text"),
    "nested": ({"cat": [["a cat"]]}, r"class 'cat': \['a cat'\] is not non-empty text"),
    "empty class name": ({" ": ["a thing"]}, "a class name is empty"),
    "prompt twice": ({"cat": ["a cat", "a cat"]}, "class 'cat' has the prompt 'a cat' more than once"),
    "class given twice": ('{"cat": ["a cat"], "cat": ["a kitten"]}', "the key 'cat' is given twice"),
    "invalid JSON": ('{"cat": ["a cat",]}', "invalid JSON at line 1 column"),
    "not JSON": ("\x00\x01 binary", "invalid JSON"),
}


@pytest.mark.parametrize("case", list(BAD_CUPL))
def test_malformed_cupl_files_are_one_line_naming_the_file(tmp_path, case):
    doc, problem = BAD_CUPL[case]
    path = write(tmp_path / "cupl.json", doc)
    with pytest.raises(PromptsError, match=problem) as info:
        load_prompts(path, prompts_format="cupl")
    assert str(path) in str(info.value) and "\n" not in str(info.value)


BAD_BENCHMARK = {
    "template without {c}": ({"d": ["a photo of {c}", "a photo"]}, {"d": ["cat"]},
                             "template 'a photo' has no '{c}' for the class name"),
    "templates not a list": ({"d": "a {c}"}, {"d": ["cat"]}, "dataset 'd' templates: expected a non-empty list"),
    "empty templates": ({"d": []}, {"d": ["cat"]}, "dataset 'd' templates: .* got an empty list"),
    "empty class list": ({"d": ["a {c}"]}, {"d": []}, "dataset 'd' class names: .* got an empty list"),
    "non-string class name": ({"d": ["a {c}"]}, {"d": ["cat", None]}, "None is not non-empty text"),
    "class names a list": ({"d": ["a {c}"]}, ["cat"], "CLIP_benchmark classnames file is a JSON object"),
    "templates a list": (["a {c}"], {"d": ["cat"]}, "CLIP_benchmark templates file is a JSON object"),
    "no shared dataset": ({"d": ["a {c}"]}, {"e": ["cat"]}, "no dataset in both"),
    "class twice": ({"d": ["a {c}"]}, {"d": ["cat", "cat"]}, "has the prompt 'a cat' more than once"),
}


@pytest.mark.parametrize("case", list(BAD_BENCHMARK))
def test_malformed_clip_benchmark_files(tmp_path, case):
    templates, names, problem = BAD_BENCHMARK[case]
    t, n = write(tmp_path / "t.json", templates), write(tmp_path / "n.json", names)
    with pytest.raises(PromptsError, match=problem) as info:
        load_prompts(t, prompts_format="clip-benchmark", classnames=str(n))
    assert "\n" not in str(info.value) and (str(t) in str(info.value) or str(n) in str(info.value))


def test_templates_without_classnames_and_classnames_for_another_format(tmp_path, files):
    templates, names = files
    with pytest.raises(PromptsError, match="CLIP_benchmark templates file: give its class names file") as info:
        load_prompts(templates)                      # detected by content: every entry holds {c}
    assert info.value.argument == "classnames"
    with pytest.raises(PromptsError, match="`classnames` goes with a CLIP_benchmark templates file"):
        load_prompts(write(tmp_path / "cupl.json", CUPL), classnames=str(names))
    with pytest.raises(PromptsError, match="classnames file .*missing.json does not exist"):
        load_prompts(templates, classnames=str(tmp_path / "missing.json"))


SPEC = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)


@pytest.mark.slow
def test_embedding_two_datasets_of_one_templates_file_keeps_both_parts(tmp_path, files, tiny_model):
    templates, names = files
    root = tmp_path / "store"
    for dataset in ("cifar10", "wikiart"):
        embed_prompts(TextsConfig(prompts=str(templates), store=str(root), table="zs", model=SPEC,
                                  classnames=str(names), dataset=dataset), loaded=tiny_model)
    summary = embed_prompts(TextsConfig(prompts=str(templates), store=str(root), table="zs", model=SPEC,
                                        classnames=str(names), dataset="wikiart"), loaded=tiny_model)
    assert summary.prompts == 9 and summary.table_rows == 4 + 9      # the wikiart part replaced, not added
    with store.open(root) as s:
        rows = s.sql("SELECT label, prompt, embedding FROM zs ORDER BY key").to_pylist()
    assert {r["label"] for r in rows} == {"airplane", "cat", "Impressionism", "Baroque", "Art Nouveau (Modern)"}
    emb = np.array([r["embedding"] for r in rows], dtype=np.float32)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)


def test_cli_flags(tmp_path, files, capsys):
    templates, names = files
    base = ["texts", "--store", str(tmp_path / "st"), "--table", "zs", "--model", TINY_MODEL, "--pretrained",
            "random", "--device", "cpu", "--prompts"]
    assert main([*base, str(templates), "--classnames", str(names), "--dataset", "cifar10"]) == 0
    assert "4 prompts for 2 labels" in capsys.readouterr().out
    cupl = write(tmp_path / "cupl.txt", CUPL)
    assert main([*base, str(cupl), "--prompts-format", "cupl"]) == 0
    assert "3 prompts for 2 labels" in capsys.readouterr().out
    assert main([*base, str(templates)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--classnames" in err
