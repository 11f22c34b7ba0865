"""One config per command, the same defaults in the CLI and the Python API: the config a command's minimal
arguments build equals the one the Python API builds from the same required values (so a default written twice
fails), and every flag that names a config field sets it (so a flag that ignores its field fails)."""
import argparse
import inspect
from dataclasses import fields, is_dataclass

import pytest

from artlens.cli import dedup, extract, interpret, perturb, probe, query, shards, tables
from artlens.cli.main import build_parser
from artlens.pipeline.dedup import DedupConfig
from artlens.pipeline.demo.corpus import SampleConfig
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.importer import ImportConfig
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.perturb.run import PerturbConfig
from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.texts import TextsConfig
from artlens.probes.interpret.config import GuideConfig, SaliencyConfig
from artlens.probes.interpret.source import ModelSource
from artlens.store.index import IndexConfig

BY_MODEL = ["--model", "M", "--pretrained", "random"]

#: command → (minimal arguments, the module's `X_config`, the config the Python API builds with its defaults)
COMMANDS = {
    "shards": (["src", "--out", "o"], shards.shards_config, ShardsConfig(source="src", out="o")),
    "sample": (["--out", "o"], shards.sample_config, SampleConfig(out="o")),
    "extract": (["--shards", "s", "--store", "st", "--table", "t"], extract.extract_config,
                ExtractConfig(shards="s", store="st", table="t")),
    "import": (["src", "--store", "st", "--table", "t", "--embedding-column", "e"], tables.import_config,
               ImportConfig(source="src", store="st", table="t", embedding_column="e")),
    "texts": (["--store", "st", "--table", "t", "--prompts", "p"], tables.texts_config,
              TextsConfig(prompts="p", store="st", table="t")),
    "index": (["--store", "st", "--table", "t"], query.index_config, IndexConfig(store="st", table="t")),
    "perturb": (["--shards", "s", "--store", "st", "--table", "t"], perturb.perturb_config,
                PerturbConfig(shards="s", store="st", table="t")),
    "dedup": (["--store", "st", "--table", "t"], dedup.dedup_config, DedupConfig(store="st", table="t")),
    "saliency": (["--image", "i.png", "--text", "words", "--out", "m.png", *BY_MODEL], interpret.saliency_config,
                 SaliencyConfig(image="i.png", text="words", out="m.png",
                                source=ModelSource(model="M", pretrained="random"))),
    "guide": (["--image", "i.png", "--text", "words", "--out", "g", *BY_MODEL], interpret.guide_config,
              GuideConfig(images=("i.png",), text="words", out="g", source=ModelSource(model="M", pretrained="random"))),
}

#: flags whose value the config converts (so only "it changed" is checked), and a valid value to give
CONVERTED = {"models": "A:x,B:y", "deformations": "blur,hue", "devices": "cpu,cpu", "metadata_types": "rating=float"}
#: flags that cannot be given alone (they come in pairs checked by the config; saliency's --image or --key
#: with --out: one of the two, checked by SaliencyConfig)
PAIRED = {"store", "table", "image", "key", "out"}
#: flags of how a command prints its result, which no config holds (`--progress`: `main` resolves it with the
#: terminal into `progress`, tests/cli/test_cli_conventions.py)
PRESENTATION = {"format", "force_progress"}


def parse(command: str, extra: list[str] = ()) -> argparse.Namespace:
    argv = [command, *COMMANDS[command][0], *extra]
    return build_parser(argv).parse_args(argv)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_cli_and_the_api_build_the_same_default_config(command):
    _, config, api = COMMANDS[command]
    assert config(parse(command)) == api


def test_model_defaults_differ_per_command_as_documented():
    assert ExtractConfig(shards="s", store="st", table="t").model == ModelSpec()
    assert ModelSpec().precision == "auto" and ExtractConfig(shards="s", store="st", table="t").workers is None
    assert TextsConfig(prompts="p", store="st", table="t").model == ModelSpec(precision="fp32")
    assert parse("texts").precision == "fp32" and parse("extract").precision == "auto"


def _value(action: argparse.Action) -> str:
    """A command-line value for this flag that differs from its default and passes the config's checks."""
    if action.dest in CONVERTED:
        return CONVERTED[action.dest]
    if action.choices:
        return next(str(c) for c in action.choices if c != action.default)
    if action.type is float:
        return "0.5"
    return "77" if action.type is not None else "x"


def _field(cfg, name: str):
    """The field a flag sets: of the config's ModelSpec or ModelSource first (`--model`), else its own."""
    model = cfg.model if isinstance(getattr(cfg, "model", None), ModelSpec) else None
    for holder in (model, getattr(cfg, "source", None), cfg):
        if is_dataclass(holder) and name in {f.name for f in fields(holder)}:
            return getattr(holder, name)
    raise AssertionError(f"flag for {name!r} names no field of {type(cfg).__name__}")


def _optional_flags(command: str) -> list[argparse.Action]:
    sub = next(a for a in build_parser([command])._actions if isinstance(a, argparse._SubParsersAction))
    return [a for a in sub.choices[command]._actions
            if a.option_strings and not a.required and a.dest not in ("help", *PAIRED, *PRESENTATION)]


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_flag_sets_its_field(command):
    _, config, api = COMMANDS[command]
    checked = 0
    for action in _optional_flags(command):
        extra = [action.option_strings[-1]] + ([] if action.nargs == 0 else [_value(action)])
        a = parse(command, extra)
        cfg = config(a)
        name = "progress" if action.dest == "no_progress" else action.dest
        assert _field(cfg, name) != _field(api, name), (command, extra)
        if action.dest not in CONVERTED and action.dest != "no_progress":
            assert _field(cfg, name) == getattr(a, action.dest), (command, extra)
        checked += 1
    assert checked >= 3


def test_guide_seed_seeds_the_noise_draws_and_the_random_weights():
    cfg = interpret.guide_config(parse("guide", ["--seed", "7"]))
    assert (cfg.seed, cfg.source.seed) == (7, 7)


def test_probe_options_default_to_the_probe_config_and_report_to_write_report():
    from artlens.probes.report import write_report

    argv = ["probe", "knn", "--store", "st", "--table", "t"]
    a, extra = build_parser(argv).parse_known_args(argv)
    a._extra = extra
    assert probe._options(a, "knn") == {"table": "t"}   # everything else: the probe's Config defaults
    a._extra = ["--k", "3"]
    assert probe._options(a, "knn") == {"table": "t", "k": 3}
    report = build_parser(["report"]).parse_args(["report", "--store", "st", "--out", "o"])
    assert report.title == inspect.signature(write_report).parameters["title"].default
