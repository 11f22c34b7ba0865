"""Input that used to end in a traceback, a bare internal error or a silent wrong result is refused in one line
that names the file or flag (exit 2), and JSON and Markdown output stay valid and inert (issue 17, point 13)."""
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import imagefactory as f
from conftest import TINY_MODEL, write_tar
from artlens import store
from artlens.cli.main import main
from artlens.errors import UserError
from artlens.probes.result import Result
from artlens.probes.stats import MIN_N_BOOT, bootstrap_ci
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter

TINY = json.loads(Path(TINY_MODEL).read_text())


def refused(capsys, argv, *expected: str, command: str | None = None) -> str:
    """Run the CLI; assert exit 2 and one error line holding every `expected` text; return the line."""
    code = main(argv)
    err = capsys.readouterr().err
    command = command or argv[0]
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith(f"artlens {command}: error: "), err
    for text in expected:
        assert text in err, (text, err)
    return err


@pytest.fixture
def shards(tmp_path):
    return write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg())]).parent


def extract_argv(shards, tmp_path, model=TINY_MODEL, pretrained="random", device="cpu"):
    return ["extract", "--shards", str(shards), "--store", str(tmp_path / "st"), "--table", "t", "--model", str(model),
            "--pretrained", str(pretrained), "--device", device, "--workers", "0", "--no-progress"]


def model_config(tmp_path, name, change):
    cfg = json.loads(json.dumps(TINY))
    change(cfg)
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return path


# ------------------------------------------------------------------ (a) model config JSON
@pytest.mark.parametrize("name, change, expected", [
    ("key-typo", lambda c: c["vision_cfg"].update(layerz=c["vision_cfg"].pop("layers")),
     ("unknown key 'vision_cfg.layerz' (did you mean 'vision_cfg.layers'?)",)),
    ("top-typo", lambda c: c.update(embed_dimm=c.pop("embed_dim")),
     ("missing key(s) 'embed_dim'", "did you mean 'embed_dim'?")),
    ("wrong-type", lambda c: c.update(embed_dim="32"), ("'embed_dim' must be int, got '32' (str)",)),
    ("wrong-type-nested", lambda c: c["text_cfg"].update(heads=2.5), ("'text_cfg.heads' must be int, got 2.5",)),
    ("not-buildable", lambda c: c["text_cfg"].update(width=65),  # 65 is not divisible by 2 heads
     ("does not build an open_clip model", "embed_dim must be divisible by num_heads")),
])
def test_a_model_config_with_a_wrong_key_or_value_is_one_line(tmp_path, shards, capsys, name, change, expected):
    config = model_config(tmp_path, name, change)
    refused(capsys, extract_argv(shards, tmp_path, model=config), str(config), "--model", *expected)
    assert not (tmp_path / "st" / "tables").exists()  # refused before anything was written


def test_a_model_config_that_is_not_json_is_one_line(tmp_path, shards, capsys):
    config = tmp_path / "broken.json"
    config.write_text('{"embed_dim": 32,')
    refused(capsys, extract_argv(shards, tmp_path, model=config), f"model config {config}: not valid JSON",
            "line 1 column 18")


def test_every_builtin_open_clip_config_passes_the_check():
    """The check refuses typos, not what open_clip itself writes (nulls for unset fields, ResNet layer lists)."""
    import open_clip

    from artlens.pipeline.models.modelconfig import config_problem

    configs = sorted((Path(open_clip.__file__).parent / "model_configs").glob("*.json"))
    assert len(configs) > 50
    problems = {c.name: config_problem(json.loads(c.read_text())) for c in configs}
    assert {name: problem for name, problem in problems.items() if problem} == {}


# ------------------------------------------------------------------ (b) --pretrained that is not a checkpoint
def test_pretrained_text_or_random_bytes_is_one_line(tmp_path, shards, capsys):
    text = tmp_path / "weights.pt"
    text.write_text("these are not weights\n")
    refused(capsys, extract_argv(shards, tmp_path, pretrained=text), f"--pretrained {text} is not a checkpoint",
            "it holds text")
    noise = tmp_path / "noise.bin"
    noise.write_bytes(np.random.default_rng(0).bytes(5000))
    refused(capsys, extract_argv(shards, tmp_path, pretrained=noise), f"--pretrained {noise} is not a checkpoint")
    fake = tmp_path / "noise.safetensors"
    fake.write_bytes(noise.read_bytes())
    refused(capsys, extract_argv(shards, tmp_path, pretrained=fake), f"--pretrained {fake} is not a checkpoint",
            "SafetensorError")


def test_pretrained_checkpoint_of_another_architecture_is_one_line(tmp_path, shards, capsys, tiny_model):
    other_keys = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), other_keys)
    refused(capsys, extract_argv(shards, tmp_path, pretrained=other_keys),
            f"--pretrained {other_keys} is a checkpoint of another architecture",
            "62 of the model's 62 weights missing", "2 weights the model does not have (e.g. 'weight')",
            "pass a checkpoint of this --model, or the --model it was trained with")
    wider = tmp_path / "wider.pt"  # the tiny model's keys, twice as wide
    torch.save({k: torch.zeros([2 * n for n in v.shape]) for k, v in tiny_model.model.state_dict().items()}, wider)
    refused(capsys, extract_argv(shards, tmp_path, pretrained=wider), "of another shape",
            "in the file", "in the model")


# ------------------------------------------------------------------ (c) --device
@pytest.mark.parametrize("device, expected", [
    ("tpu9", "unknown --device 'tpu9'; use auto, cpu, cuda, cuda:N or mps"),
    ("cuda:99", "--device cuda:99 asked for, but torch sees"),
])
def test_a_device_torch_does_not_have_is_one_line(tmp_path, shards, capsys, device, expected):
    refused(capsys, extract_argv(shards, tmp_path, device=device), expected)


# ------------------------------------------------------------------ (d) sql --out, (h) sql --format json
@pytest.fixture
def vec_store(tmp_path):
    root = tmp_path / "vs"
    writer = TableWriter(root, TableEntry(name="vec", model="m", pretrained="p", preprocess="x", dim=2))
    writer.commit("s", [{"key": "a", "shard": "s"}, {"key": "b", "shard": "s"}],
                  np.array([[1, 0], [0, 1]], np.float32), [])
    writer.finish()
    return root


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_sql_out_naming_a_folder_is_one_line(tmp_path, vec_store, capsys, fmt):
    folder = tmp_path / "results"
    folder.mkdir()
    refused(capsys, ["sql", "--store", str(vec_store), "SELECT key FROM vec", "--format", fmt, "--out",
                     str(folder)], f"--out {folder} is a folder; name a file")
    under_a_file = tmp_path / "a-file"
    under_a_file.write_text("x")
    refused(capsys, ["sql", "--store", str(vec_store), "SELECT key FROM vec", "--format", fmt, "--out",
                     str(under_a_file / "r.out")], f"lies under {under_a_file}, which is a file")
    out = tmp_path / "new" / "folder" / f"r.{fmt}"  # missing folders above a file are made
    assert main(["sql", "--store", str(vec_store), "SELECT key FROM vec", "--format", fmt, "--out", str(out)]) == 0
    assert out.is_file() and out.stat().st_size > 0


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    return json.loads(text, parse_constant=refuse)


def test_sql_json_writes_null_for_nan_and_infinity(vec_store, capsys):
    query = ("SELECT key, 'nan'::DOUBLE AS x, CASE WHEN key = 'a' THEN 'inf'::DOUBLE ELSE -1.5 END AS y, "
             "['-inf'::DOUBLE, 2.0] AS l, {'v': 'nan'::DOUBLE} AS s FROM vec ORDER BY key")
    assert main(["sql", "--store", str(vec_store), query, "--format", "jsonl"]) == 0
    out = capsys.readouterr().out
    assert "NaN" not in out and "Infinity" not in out
    rows = [_strict(line) for line in out.splitlines()]
    assert rows == [{"key": "a", "x": None, "y": None, "l": [None, 2.0], "s": {"v": None}},
                    {"key": "b", "x": None, "y": -1.5, "l": [None, 2.0], "s": {"v": None}}]


# ------------------------------------------------------------------ (e) report --out, (i) Markdown links
LINK = "[x](javascript:alert(1))"


@pytest.fixture
def result_store(tmp_path):
    root = tmp_path / "rs"
    TableWriter(root, TableEntry(name="art", model="m", pretrained="p", preprocess="x", dim=4)).finish()
    r = Result("linear", ["art"], {"table": "art", "label": LINK, "group": "<b>artist</b>"}, n=30)
    r.add("accuracy", 0.7, (0.6, 0.8), 0.5)
    r.per_class = {LINK: {"precision": 0.7, "support": 10}, "![img](javascript:alert(2))": {"precision": 0.6},
                   "<a href='javascript:alert(3)'>a</a>": {"precision": 0.5}, "`code` \\[": {"precision": 0.4},
                   "line\n\n[ref]: javascript:alert(4)": {"precision": 0.3}}
    r.details = {"note": f"see {LINK}", "classes": 5}
    with store.open(root) as s:
        s.save_result("linear_art", r.to_dict())
    return root


def test_report_out_naming_a_file_is_one_line(tmp_path, result_store, capsys):
    file = tmp_path / "report.html"
    file.write_text("an earlier file")
    refused(capsys, ["report", "--store", str(result_store), "--out", str(file)], f"--out {file} is a file",
            "name a folder")
    assert file.read_text() == "an earlier file"
    refused(capsys, ["report", "--store", str(result_store), "--out", str(file / "sub")],
            f"lies under {file}, which is a file")


#: A Markdown link or image whose brackets are not backslash-escaped, and its target.
_LIVE_LINK = re.compile(r"(?<!\\)\[(?:[^\[\]\\]|\\.)*(?<!\\)\]\(([^)]*)")
#: A code span (its text is literal: no link or HTML in it is live), opened and closed by unescaped backticks.
_CODE_SPAN = re.compile(r"(?<!\\)`[^`]*`")


def test_labels_cannot_make_links_or_html_in_the_markdown_report(tmp_path, result_store):
    assert main(["report", "--store", str(result_store), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "report.md").read_text()
    spans = _CODE_SPAN.findall(md)
    assert f"`table: art · label: {LINK} · group: <b>artist</b>`" in spans  # the config line, literal
    live = _CODE_SPAN.sub("", md)
    targets = _LIVE_LINK.findall(live)
    assert targets and all(t.startswith(("#", "figures/")) for t in targets), targets  # nav and figures only
    assert "javascript:" in live and "\\[x\\](javascript:alert(1))" in live  # the label shown as its text
    assert "<a href" not in live and "<b>" not in live and "&lt;b&gt;artist&lt;/b&gt;" in live
    assert not re.search(r"^\s*\[ref\]:", md, flags=re.M)  # no link reference definition from a label
    assert "\\`code\\` \\\\\\[" in md  # backticks and backslashes escaped too
    assert "[0.600, 0.800]" in md  # the intervals as they were
    html = (tmp_path / "out" / "index.html").read_text()
    assert "javascript:" in html and 'href="javascript' not in html and "<a href='javascript" not in html


# ------------------------------------------------------------------ (f) --n-boot, (g) --min-count
def probe_argv(labelled_store, *options):
    return ["probe", "linear", "--store", str(labelled_store), "--table", "art", "--label", "style", *options]


@pytest.mark.parametrize("n_boot", ["0", "-5", str(MIN_N_BOOT - 1)])
def test_too_few_bootstrap_resamples_are_refused(labelled_store, capsys, n_boot):
    refused(capsys, probe_argv(labelled_store, "--n-boot", n_boot),
            f"--n-boot must be a whole number of at least {MIN_N_BOOT}", f"got {n_boot}")


def test_a_negative_min_count_is_refused(labelled_store, capsys):
    refused(capsys, probe_argv(labelled_store, "--min-count", "-1"), "--min-count must be a whole number of 0 or more",
            "got -1")


def test_a_suite_with_too_few_resamples_is_refused_before_any_probe_runs(tmp_path, labelled_store, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text("probes:\n  - {probe: knn, table: art, labels: [style]}\n"
                     "  - {probe: linear, table: art, label: style, n_boot: 0}\n")
    with store.open(labelled_store) as s:
        before = len(s.results())
    refused(capsys, ["probe", "run", str(suite), "--store", str(labelled_store)], "--n-boot must be", "got 0")
    with store.open(labelled_store) as s:
        assert len(s.results()) == before  # the knn step did not run either


def test_bootstrap_ci_refuses_too_few_resamples_in_the_python_api():
    with pytest.raises(UserError, match=f"n_boot must be a whole number of at least {MIN_N_BOOT}"):
        bootstrap_ci(lambda i: 0.5, 10, n_boot=0)
    lo, hi = bootstrap_ci(lambda i: float(np.mean(i)), 50, n_boot=MIN_N_BOOT)
    assert np.isfinite([lo, hi]).all() and lo <= hi
