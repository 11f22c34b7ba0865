"""What every command's arguments share: flag defaults read from the config dataclasses (never written twice),
the model flags declared once, and the Python name → flag table that renders a `UserError` for the terminal.

    option(p, ShardsConfig, "shard_size", type=int, help="images per shard")   # --shard-size, default 1000
"""
from __future__ import annotations

import argparse
from dataclasses import MISSING, fields, replace
from types import SimpleNamespace
from typing import Any

from artlens.pipeline.models.spec import PRECISION_NAMES

#: Config fields whose flag is not `--` + the name with `_` → `-`.
FLAGS: dict[str, str] = {
    "k": "-k",
    "images": "--image",
    "progress": "--no-progress",
    "store_path": "--store",          # run_suite(path, store_path)
    "out_dir": "--out",               # write_report(store_path, out_dir)
}


def flag(name: str) -> str:
    """The CLI's name for a Python argument (a config field): `batch_size` → `--batch-size`."""
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def default(config: type, name: str) -> Any:
    """A config dataclass field's default (its default_factory called)."""
    found = {f.name: f for f in fields(config)}[name]
    if found.default is not MISSING:
        return found.default
    if found.default_factory is not MISSING:
        return found.default_factory()
    raise TypeError(f"{config.__name__}.{name} has no default; declare its flag required")


def defaults(config: type) -> SimpleNamespace:
    """Every field default of a config dataclass, without building (and validating) one."""
    return SimpleNamespace(**{f.name: default(config, f.name) for f in fields(config)
                              if f.default is not MISSING or f.default_factory is not MISSING})


def option(p, config: type, name: str, **kwargs) -> argparse.Action:
    """Declare the flag of a config field, its default taken from the field."""
    return p.add_argument(flag(name), dest=name, default=default(config, name), **kwargs)


MODEL_FLAGS = ("model", "pretrained", "seed", "precision", "device", "cache_dir")
_MODEL_HELP = {
    "model": "open_clip model name (artlens models), hf-hub:ORG/NAME, or JSON model config path",
    "pretrained": "open_clip tag, checkpoint path, or 'random'; hf-hub models: hub (their own, the default) "
                  "or hub@COMMIT",
    "seed": "seed for --pretrained random",
    "precision": "auto: fp16 on CUDA, fp32 on CPU",
    "device": "auto, cpu, cuda or cuda:N",
    "cache_dir": "open_clip/hub cache directory for weights",
}
_MODEL_KWARGS = {"seed": {"type": int}, "precision": {"choices": ("auto",) + PRECISION_NAMES}}


def model_arguments(p, spec, offer: tuple[str, ...] = MODEL_FLAGS, *, help: dict[str, str | None] | None = None,
                    into: dict[str, Any] | None = None) -> None:
    """The model flags (`--model --pretrained --seed --precision --device --cache-dir`), declared once.
    `spec` is the command's default ModelSpec (or any object with those attributes: `defaults(ModelSource)`);
    `offer` picks the flags; `help` replaces a flag's help; `into` puts a flag in another group (extract:
    `--model` against `--models`)."""
    texts = {**_MODEL_HELP, **(help or {})}
    for name in offer:
        target = (into or {}).get(name, p)
        target.add_argument(flag(name), dest=name, default=getattr(spec, name), help=texts[name],
                            **_MODEL_KWARGS.get(name, {}))


def model_spec(a: argparse.Namespace, spec, offer: tuple[str, ...] = MODEL_FLAGS):
    """The ModelSpec the model flags name: the offered flags' values over the command's default `spec`."""
    return replace(spec, **{name: getattr(a, name) for name in offer})


# ------------------------------------------------------------------ output and progress flags, declared once
#: Query output formats (artlens/cli/output.py): json is one document (an array of rows), jsonl one row a line.
OUTPUT_FORMATS = ("table", "csv", "json", "jsonl", "parquet")
#: Rows `--format table` shows unless `--max-rows` says otherwise (0: all).
DEFAULT_MAX_ROWS = 20


def max_rows(value: str) -> int:
    """`--max-rows`: a whole number of 0 or more, or `all` (= 0, no limit)."""
    if value.strip().lower() in ("all", "none"):
        return 0
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of 0 or more, or 'all', got {value!r}")
    return number


def output_arguments(p, formats: tuple[str, ...] = OUTPUT_FORMATS, out_help: str | None = None) -> None:
    """`--format`, `--out` and `--max-rows`, the same for every command that writes rows."""
    p.add_argument("--format", default=formats[0], choices=formats,
                   help="table (for reading), csv, json (one JSON document: an array of row objects), jsonl "
                        "(JSON Lines: one object per line) or parquet (needs --out)")
    p.add_argument("--out", help=out_help or "write to FILE instead of standard output")
    p.add_argument("--max-rows", type=max_rows, default=DEFAULT_MAX_ROWS, metavar="N",
                   help=f"rows --format table shows (default: {DEFAULT_MAX_ROWS}; 0 or 'all': every row); "
                        "the other formats write every row")


_PROGRESS_HELP = {"--no-progress": "no progress bars (default: bars only when standard error is a terminal)",
                  "--progress": "progress bars even when standard error is not a terminal"}


def progress_flags(p) -> None:
    """`--progress` / `--no-progress` on a parser that has either or neither (a command that declared its own
    `--no-progress` gets `--progress` and the help text); `show_progress` resolves them."""
    have = getattr(p, "_option_string_actions", {})
    if "--no-progress" in have:
        have["--no-progress"].help = have["--no-progress"].help or _PROGRESS_HELP["--no-progress"]
    else:
        p.add_argument("--no-progress", action="store_true", help=_PROGRESS_HELP["--no-progress"])
    if "--progress" not in have:
        p.add_argument("--progress", dest="force_progress", action="store_true", help=_PROGRESS_HELP["--progress"])


def show_progress(a: argparse.Namespace, stream=None) -> bool:
    """Progress bars or not: `--no-progress` off, `--progress` on, else on only when standard error (or
    `stream`) is a terminal, so logs and pipes get no bars."""
    import sys

    if getattr(a, "no_progress", False):
        return False
    if getattr(a, "force_progress", False):
        return True
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False
