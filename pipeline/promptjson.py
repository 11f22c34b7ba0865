"""The JSON prompt files of the zero-shot ecosystem, as prompts of `artlens texts` (`pipeline/texts.py`).

CLIP_benchmark (clip_benchmark/datasets/en_zeroshot_classification_templates.json and en_classnames.json):
a templates file `{"dataset": ["a photo of a {c}.", ...]}` and a class names file `{"dataset": ["class 1",
...]}`, both keyed by dataset; every class name × template of the dataset is one prompt (label = the class
name, the class's index is its position). A dataset's templates may also be CuPL's shape (class name →
prompts), as CLIP_benchmark's CuPL files are.
CuPL (prompts generated per class): `{"class name": ["a photo of ...", ...]}`, literal prompts (like CSV
`label,prompt`: `template` is the prompt, `name` empty).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from artlens.errors import ArtlensError
from artlens.pipeline.texts import Prompt, PromptsError

PLACEHOLDER = "{c}"


@dataclass(frozen=True)
class JsonOptions:
    classnames: Path | None = None    # CLIP_benchmark: the class names file of the templates file
    dataset: str | None = None        # CLIP_benchmark: the key of both files (None: the one key they share)


class _Twice(ArtlensError, ValueError):
    """A JSON object with a key given twice (internal: read_json turns it into a UserError)."""


def _refuse_twice(pairs: list) -> dict:
    """An object with a key given twice (json keeps the last silently): refused, no prompts lost."""
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise _Twice(key)
        seen[key] = value
    return seen


def read_json(path: Path, text: str):
    try:
        return json.loads(text, object_pairs_hook=_refuse_twice)
    except json.JSONDecodeError as exc:
        raise PromptsError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except _Twice as twice:
        raise PromptsError(f"{path}: the key {twice.args[0]!r} is given twice in one object") from None


def _mapping(path: Path, doc, what: str) -> dict:
    if not isinstance(doc, dict) or not doc:
        got = "an empty object" if doc == {} else type(doc).__name__
        raise PromptsError(f"{path}: a {what} file is a JSON object of {_SHAPES[what]}, got {got}")
    return doc


_SHAPES = {"CuPL": '"class name": ["prompt", ...]', "CLIP_benchmark templates": '"dataset": ["... {c} ...", ...]',
           "CLIP_benchmark classnames": '"dataset": ["class name", ...]'}


def _texts(path: Path, where: str, value) -> list[str]:
    """A non-empty list of non-empty strings."""
    if not isinstance(value, list) or not value:
        raise PromptsError(f"{path}: {where}: expected a non-empty list of text, got "
                           f"{'an empty list' if value == [] else type(value).__name__}")
    for v in value:
        if not isinstance(v, str) or not v.strip():
            raise PromptsError(f"{path}: {where}: {v!r} is not non-empty text")
    return [v.strip() for v in value]


def _label(path: Path, label: str) -> str:
    if not label.strip():
        raise PromptsError(f"{path}: a class name is empty")
    return label.strip()


def cupl_prompts(path: Path, doc) -> list[Prompt]:
    """CuPL: class name → literal prompts."""
    prompts = []
    for label, value in _mapping(path, doc, "CuPL").items():
        label = _label(path, label)
        prompts += [Prompt(f"{label}|{i}|", label, p, "", p)
                    for i, p in enumerate(_texts(path, f"class {label!r}", value))]
    return prompts


def looks_like_templates(doc) -> bool:
    """A CLIP_benchmark templates file rather than CuPL: every list's entries hold `{c}`."""
    lists = [v for v in doc.values() if isinstance(v, list)] if isinstance(doc, dict) else []
    return bool(lists) and all(isinstance(s, str) and PLACEHOLDER in s for v in lists for s in v)


def _dataset(path: Path, templates: dict, classnames: dict, names_path: Path, dataset: str | None) -> str:
    if dataset is not None:
        for doc, where in ((templates, path), (classnames, names_path)):
            if dataset not in doc:
                raise PromptsError(f"{where}: no dataset {dataset!r} (datasets there: "
                                   f"{', '.join(sorted(doc)[:20])}{', …' if len(doc) > 20 else ''})",
                                   argument="dataset")
        return dataset
    shared = sorted(set(templates) & set(classnames))
    if len(shared) == 1:
        return shared[0]
    raise PromptsError(f"{path}: {'several datasets' if shared else 'no dataset'} in both the templates and the "
                       f"class names file ({', '.join(shared[:20]) or 'none shared'}); name one with `dataset`",
                       argument="dataset")


def clip_benchmark_prompts(path: Path, doc, options: JsonOptions) -> list[Prompt]:
    """CLIP_benchmark: the dataset's class names × its templates (or its CuPL prompts per class)."""
    templates = _mapping(path, doc, "CLIP_benchmark templates")
    if options.classnames is None:
        raise PromptsError(f"{path} is a CLIP_benchmark templates file: give its class names file "
                           "(en_classnames.json) as `classnames`", argument="classnames")
    names_path = Path(options.classnames)
    try:
        names_text = names_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise PromptsError(f"classnames file {names_path} does not exist", argument="classnames") from None
    except UnicodeDecodeError as exc:
        raise PromptsError(f"{names_path}: not UTF-8 text ({exc})", argument="classnames") from None
    classnames = _mapping(names_path, read_json(names_path, names_text), "CLIP_benchmark classnames")
    dataset = _dataset(path, templates, classnames, names_path, options.dataset)
    names = _texts(names_path, f"dataset {dataset!r} class names", classnames[dataset])
    value = templates[dataset]
    if isinstance(value, dict):  # CuPL prompts per class, inside a CLIP_benchmark file
        missing = [n for n in names if n not in value]
        if missing:
            raise PromptsError(f"{path}: dataset {dataset!r}: no prompts for class {missing[0]!r}")
        return cupl_prompts(path, {n: value[n] for n in names})
    where = f"dataset {dataset!r} templates"
    found = _texts(path, where, value)
    without = [t for t in found if PLACEHOLDER not in t]
    if without:
        raise PromptsError(f"{path}: {where}: template {without[0]!r} has no '{PLACEHOLDER}' for the class name")
    return [Prompt(f"{name}|{i}|{name}", name, t, name, t.replace(PLACEHOLDER, name))
            for i, t in enumerate(found) for name in names]
