"""Check an open_clip JSON model config (`model` given as a path) before open_clip builds a model from it.

open_clip passes the file's keys straight to its model classes and tower dataclasses, so a typo in a key or
a value of the wrong type surfaces as a TypeError deep inside torch, or the file is silently skipped (a
config without `embed_dim`, `vision_cfg` and `text_cfg`). Here every key is checked against the fields
open_clip reads (the model class's arguments, `CLIPVisionCfg`, `CLIPTextCfg`, CoCa's `MultimodalCfg`) and
every value against the field's type, and the first problem is one line naming the file and the key.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import typing
from pathlib import Path
from typing import Any

from artlens.errors import UserError

REQUIRED = ("embed_dim", "vision_cfg", "text_cfg")
#: Model-class arguments a config may not set (open_clip passes them itself).
_SET_BY_OPEN_CLIP = {"self", "cast_dtype"}


class ModelConfigError(UserError):
    """A JSON model config open_clip cannot build a model from; the message names the file and the key."""

    def __init__(self, path: Path, problem: str):
        super().__init__(f"model config {path}: {problem}; fix the file or pass an open_clip model name as "
                         "`model`", argument="model")


def _classes() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """(top-level key → type, section → {key → type}) of what open_clip reads from a model config."""
    from open_clip.coca_model import CoCa, MultimodalCfg
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg, CustomTextCLIP

    top: dict[str, Any] = {"custom_text": bool}
    for cls in (CLIP, CustomTextCLIP, CoCa):
        for name, param in inspect.signature(cls.__init__).parameters.items():
            if name not in _SET_BY_OPEN_CLIP and param.kind is param.POSITIONAL_OR_KEYWORD:
                annotation = param.annotation
                top.setdefault(name, Any if annotation is inspect.Parameter.empty else annotation)
    sections = {name: {f.name: f.type for f in dataclasses.fields(cfg)}
                for name, cfg in (("vision_cfg", CLIPVisionCfg), ("text_cfg", CLIPTextCfg),
                                  ("multimodal_cfg", MultimodalCfg))}
    for name in sections:
        top[name] = dict
    return top, sections


def _fits(value: Any, kind: Any) -> bool:
    """Whether a JSON value fits a field's annotation (unknown annotations are trusted). `null` fits every
    field: open_clip's own configs write it for fields they leave unset (`"patch_size": null` of a ResNet)."""
    if value is None or kind is Any or kind is inspect.Parameter.empty or isinstance(kind, str):
        return True
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Union or str(origin) == "types.UnionType":
        return any(_fits(value, a) for a in args)
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is str:
        return isinstance(value, str)
    if kind is dict or origin is dict:
        return isinstance(value, dict)
    if kind in (tuple, list) or origin in (tuple, list):
        if not isinstance(value, list):
            return False
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return not args or all(_fits(v, args[0]) for v in value)
        return len(value) == len(args) and all(_fits(v, a) for v, a in zip(value, args))
    if inspect.isclass(kind) and dataclasses.is_dataclass(kind):
        return isinstance(value, dict)
    return True


def _type_name(kind: Any) -> str:
    text = getattr(kind, "__name__", None) if not typing.get_args(kind) else None
    return text or str(kind).replace("typing.", "")


def _unknown(key: str, known: dict[str, Any], where: str) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"did you mean {where + close[0]!r}?" if close else f"keys open_clip reads there: {', '.join(sorted(known))}"
    return f"unknown key {where + key!r} ({hint})"


def _check_keys(values: dict, known: dict[str, Any], where: str) -> str | None:
    for key, value in values.items():
        if key not in known:
            return _unknown(key, known, where)
        if not _fits(value, known[key]):
            return (f"{where + key!r} must be {_type_name(known[key])}, got {value!r} "
                    f"({type(value).__name__})")
    return None


def config_problem(cfg: Any) -> str | None:
    """What is wrong with a parsed model config, or None."""
    if not isinstance(cfg, dict):
        return f"expected a JSON object with {', '.join(REQUIRED)}, got {type(cfg).__name__}"
    top, sections = _classes()
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        unknown = [k for k in cfg if k not in top]
        hint = f" ({_unknown(unknown[0], top, '')})" if unknown else ""
        return f"missing key(s) {', '.join(map(repr, missing))}{hint}"
    problem = _check_keys(cfg, top, "")
    if problem:
        return problem
    for name, known in sections.items():
        if name in cfg:
            problem = _check_keys(cfg[name], known, f"{name}.")
            if problem:
                return problem
    return None


def read_model_config(path: Path) -> dict:
    """The model config at `path`, checked; a ModelConfigError naming the file and key otherwise."""
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ModelConfigError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise ModelConfigError(path, f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    problem = config_problem(cfg)
    if problem:
        raise ModelConfigError(path, problem)
    return cfg


#: open_clip's optional packages and the config key that makes a model need each: a timm image tower, a
#: Hugging Face text tower or tokenizer.
OPTIONAL_PACKAGES = {"timm": (("vision_cfg", "timm_model_name"),),
                     "transformers": (("text_cfg", "hf_model_name"), ("text_cfg", "hf_tokenizer_name"))}


def builtin_config_path(name: str) -> Path | None:
    """open_clip's own JSON config of a model name, found without importing open_clip."""
    import importlib.util

    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "model_configs" / f"{name.replace('/', '-')}.json"


def packages_needed(model: str) -> set[str] | None:
    """Which of OPTIONAL_PACKAGES open_clip needs to build `model` (a name or a JSON config path), read from
    its config without importing open_clip; None when that config is not at hand (an hf-hub model, an unknown
    name, an unreadable file): then any of them may be needed."""
    path = Path(model) if model.endswith(".json") else builtin_config_path(model)
    try:
        cfg = json.loads(path.read_text(encoding="utf-8")) if path is not None else None
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    cfg = cfg.get("model_cfg", cfg)
    return {package for package, keys in OPTIONAL_PACKAGES.items()
            if any(key in (cfg.get(section) or {}) for section, key in keys)}


def unused_packages(models) -> set[str]:
    """The OPTIONAL_PACKAGES none of these models (names or config paths) needs; none when a config is not
    at hand (`packages_needed` None)."""
    needed = [packages_needed(m) for m in models]
    if any(n is None for n in needed):
        return set()
    return set(OPTIONAL_PACKAGES) - set().union(*needed)
