"""`artlens texts`: a prompt set (YAML or CSV) → open_clip text embeddings → a store table of kind "text".

YAML: `templates` (each with `{}`, filled with a name) and `classes`, label → one name, a list of names, or
`{names: [...], templates: [...]}` (its own templates replace the top-level ones). Every name × template
of a class is one prompt. Quote a template that starts with `{}` ("{} painting"): YAML reads `{` as a map.
    templates: ["a painting in the style of {}.", "{} art."]
    classes: {Impressionism: [impressionism, impressionist], Baroque: baroque,
              indoor: {names: [interior], templates: ["a painting of an {}."]}}
CSV: header `label,template` (the label fills `{}`) or `label,prompt` (literal prompts: `template` is the
prompt itself and `name` is empty). One row per prompt.
JSON (`pipeline/promptjson.py`): CLIP_benchmark's templates file with its class names file (`classnames`,
`dataset`), or a CuPL file (class name → prompts); which one is read from the content, or named by `format`.
Rows: `key` (`label|template-index|name`, stable and unique), `shard` (the prompts file's absolute path),
`label`, `template`, `name`, `prompt`, `embedding` (L2-normalised float32). Each prompts file is one part,
replaced when the same file is embedded again.
"""
from __future__ import annotations

import csv
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
import yaml

from artlens import store
from artlens.store.catalog import Catalog, TableEntry
from artlens.store.compat import check_compatible
from artlens.store.layout import StoreLayout, check_table_name
from artlens.store.writer import TableWriter

from artlens import __version__
from artlens.errors import UserError
from artlens.pipeline.bundled import bundled_names, find_bundled
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.models.load import LoadedModel, load_model, model_name

PROMPTS_DIR = Path(__file__).parent / "prompts"
_CLASS_KEYS = ("names", "templates")


class TextsError(UserError):
    """Input `artlens texts` refuses: a bad prompts file, incompatible tables."""


class PromptsError(TextsError):
    """A prompts file that cannot be read or breaks the format rules (the message names the file)."""


@dataclass(frozen=True)
class Prompt:
    key: str
    label: str
    template: str
    name: str
    prompt: str


@dataclass(frozen=True)
class TextsConfig:
    prompts: str                      # prompts file, or the name of a bundled set (pipeline/prompts/NAME.yaml)
    store: str
    table: str
    model: ModelSpec = field(default_factory=lambda: ModelSpec(precision="fp32"))   # text towers: fp32 everywhere
    for_table: str | None = None      # image table whose model the text embeddings must match
    batch_size: int = 256
    overwrite: bool = False
    prompts_format: str = "auto"      # auto (by suffix and content), or one of PROMPT_FORMATS
    classnames: str | None = None     # CLIP_benchmark: the class names JSON of a templates file
    dataset: str | None = None        # CLIP_benchmark: the dataset key of both files (None: the one they share)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {self.batch_size}", argument="batch_size")
        if self.prompts_format not in ("auto",) + tuple(PROMPT_FORMATS):
            raise UserError(f"unknown prompts_format {self.prompts_format!r}; choose from auto, "
                            f"{', '.join(PROMPT_FORMATS)}", argument="prompts_format")


@dataclass
class TextsSummary:
    table: str
    prompts_file: str
    prompts: int
    labels: int
    table_rows: int = 0
    for_table: str | None = None
    elapsed_s: float = 0.0

    def lines(self) -> list[str]:
        match = [f"same model, weights and dim as image table {self.for_table}"] if self.for_table else []
        return [f"table {self.table}: {self.prompts} prompts for {self.labels} labels from {self.prompts_file} "
                f"embedded in {self.elapsed_s:.1f} s; table now holds {self.table_rows} rows"] + match


def resolve_prompts(spec: str) -> Path:
    """A prompts file path, or the name of a bundled set such as `sample-style`."""
    found = find_bundled(spec, PROMPTS_DIR)
    if found is None:
        raise PromptsError(f"prompts file {spec} does not exist (bundled prompt sets: {bundled_names(PROMPTS_DIR)})")
    return found


def _json_format(path: Path, text: str) -> str:
    """A .json prompts file: CLIP_benchmark templates (every entry holds {c}) or CuPL (class → prompts)."""
    from artlens.pipeline.promptjson import looks_like_templates, read_json

    return "clip-benchmark" if looks_like_templates(read_json(path, text)) else "cupl"


def _clip_benchmark(path: Path, text: str, classnames: str | None, dataset: str | None) -> list[Prompt]:
    from artlens.pipeline.promptjson import JsonOptions, clip_benchmark_prompts, read_json

    options = JsonOptions(classnames=Path(classnames) if classnames else None, dataset=dataset)
    return clip_benchmark_prompts(path, read_json(path, text), options)


def _cupl(path: Path, text: str, classnames: str | None, dataset: str | None) -> list[Prompt]:
    from artlens.pipeline.promptjson import cupl_prompts, read_json

    return cupl_prompts(path, read_json(path, text))


#: prompts_format → parser(path, text, classnames, dataset) → prompts.
PROMPT_FORMATS = {
    "yaml": lambda path, text, classnames, dataset: _parse_yaml(path, text),
    "csv": lambda path, text, classnames, dataset: _parse_csv(path, text),
    "clip-benchmark": _clip_benchmark,
    "cupl": _cupl,
}
#: file suffix → its format, or a function of (path, text) that reads it from the content.
SUFFIX_FORMATS = {".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".json": _json_format}


def load_prompts(path: str | Path, prompts_format: str = "auto", classnames: str | None = None,
                 dataset: str | None = None) -> list[Prompt]:
    """Parse and validate a prompt set into its prompts: YAML (.yaml/.yml), CSV (.csv), or JSON (.json:
    CLIP_benchmark templates + `classnames`, or CuPL); `prompts_format` names the format whatever the suffix."""
    path = Path(path)
    suffix = path.suffix.lower()
    if prompts_format == "auto" and suffix not in SUFFIX_FORMATS:
        raise PromptsError(f"{path}: unknown prompts file type {suffix or '(none)'!r}; use "
                           f"{', '.join(SUFFIX_FORMATS)}, or name the format with `prompts_format`",
                           argument="prompts_format")
    if prompts_format not in ("auto",) + tuple(PROMPT_FORMATS):
        raise PromptsError(f"unknown prompts_format {prompts_format!r}; choose from auto, "
                           f"{', '.join(PROMPT_FORMATS)}", argument="prompts_format")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise PromptsError(f"{path}: not UTF-8 text ({exc})") from None
    fmt = SUFFIX_FORMATS[suffix] if prompts_format == "auto" else prompts_format
    fmt = fmt(path, text) if callable(fmt) else fmt
    if classnames is not None and fmt != "clip-benchmark":
        raise PromptsError(f"{path}: `classnames` goes with a CLIP_benchmark templates file, and this one is read "
                           f"as {fmt}", argument=("classnames", "prompts_format"))
    prompts = PROMPT_FORMATS[fmt](path, text, classnames, dataset)
    _check_unique(path, prompts)
    return prompts


def _parse_yaml(path: Path, text: str) -> list[Prompt]:
    """The YAML format: top-level `templates` and `classes` (see the module docstring)."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where else ""
        raise PromptsError(f"{path}: invalid YAML{at}: {getattr(exc, 'problem', exc)} "
                           "(quote templates that start with '{}')") from None
    if not isinstance(doc, dict):
        raise PromptsError(f"{path}: expected a mapping with 'classes' (and 'templates'), got {type(doc).__name__}")
    unknown = sorted(map(str, set(doc) - {"templates", "classes"}))
    if unknown:
        raise PromptsError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: templates, classes")
    classes = doc.get("classes")
    if not isinstance(classes, dict) or not classes:
        raise PromptsError(f"{path}: 'classes' must be a non-empty mapping of label → names")
    default = _templates(path, "top-level templates", doc["templates"]) if "templates" in doc else None
    prompts: list[Prompt] = []
    for label, value in classes.items():
        if not isinstance(label, (str, int)) or isinstance(label, bool) or not str(label).strip():
            raise PromptsError(f"{path}: class label {label!r} must be non-empty text")
        prompts += _yaml_class(path, str(label), value, default)
    return prompts


def _yaml_class(path: Path, label: str, value, default: list[str] | None) -> list[Prompt]:
    """One class: names (text, list, or a mapping with `names` and its own `templates`) × templates."""
    templates = default
    if isinstance(value, dict):
        unknown = sorted(map(str, set(value) - set(_CLASS_KEYS)))
        if unknown:
            raise PromptsError(f"{path}: class {label!r}: unknown key(s) {', '.join(unknown)}; "
                               f"allowed: {', '.join(_CLASS_KEYS)}")
        if "templates" in value:
            templates = _templates(path, f"class {label!r} templates", value["templates"])
        value = value.get("names")
    names = _strings(path, f"class {label!r} names", value)
    if templates is None:
        raise PromptsError(f"{path}: class {label!r} has no templates (neither top-level nor its own)")
    return [Prompt(f"{label}|{i}|{name}", label, t, name, t.replace("{}", name))
            for i, t in enumerate(templates) for name in names]


def _strings(path: Path, what: str, value) -> list[str]:
    """A string or list of strings, each non-empty, as a list; anything else (or nothing) is an error."""
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        raise PromptsError(f"{path}: {what}: empty — give text or a non-empty list of text")
    for v in values:
        if not isinstance(v, str) or not v.strip():
            hint = " (quote a template that starts with '{}')" if isinstance(v, dict) else ""
            raise PromptsError(f"{path}: {what}: {v!r} is not non-empty text{hint}")
    return [v.strip() for v in values]


def _templates(path: Path, what: str, value) -> list[str]:
    """Like _strings, and each template must hold `{}`."""
    templates = _strings(path, what, value)
    missing = [t for t in templates if "{}" not in t]
    if missing:
        raise PromptsError(f"{path}: {what}: template {missing[0]!r} has no '{{}}' for the name")
    return templates


def _parse_csv(path: Path, text: str) -> list[Prompt]:
    """The CSV format: `label,template` or `label,prompt` rows (blank lines skipped)."""
    reader = csv.reader(text.splitlines())
    header = [h.strip().lower() for h in next(reader, [])]
    if header not in (["label", "template"], ["label", "prompt"]):
        raise PromptsError(f"{path}: header must be 'label,template' or 'label,prompt', got {','.join(header)!r}")
    literal, counts, prompts = header[1] == "prompt", {}, []
    for row in reader:
        where = f"{path}: line {reader.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise PromptsError(f"{where}: expected 2 fields ({','.join(header)}), got {len(row)}; "
                               "quote fields that contain commas")
        label, text_ = (cell.strip() for cell in row)
        if not label or not text_:
            raise PromptsError(f"{where}: empty {'label' if not label else header[1]}")
        if not literal and "{}" not in text_:
            raise PromptsError(f"{where}: template {text_!r} has no '{{}}' for the label")
        i = counts[label] = counts.get(label, -1) + 1
        name, prompt = ("", text_) if literal else (label, text_.replace("{}", label))
        prompts.append(Prompt(f"{label}|{i}|{name}", label, text_, name, prompt))
    if not prompts:
        raise PromptsError(f"{path}: no prompts (only a header)")
    return prompts


def prompts_dataset(path: Path, cfg: TextsConfig) -> str:
    """The CLIP_benchmark dataset the prompts are of (named, or the one key both files share)."""
    if cfg.dataset is not None:
        return cfg.dataset
    from artlens.pipeline.promptjson import read_json

    names = read_json(Path(cfg.classnames), Path(cfg.classnames).read_text(encoding="utf-8-sig"))
    templates = read_json(path, path.read_text(encoding="utf-8-sig"))
    return sorted(set(templates) & set(names))[0]


def _check_unique(path: Path, prompts: list[Prompt]) -> None:
    """Refuse a prompt given twice for one label, and keys made ambiguous by '|' in labels or names."""
    twice = [pair for pair, n in Counter((p.label, p.prompt) for p in prompts).items() if n > 1]
    if twice:
        raise PromptsError(f"{path}: class {twice[0][0]!r} has the prompt {twice[0][1]!r} more than once")
    if len({p.key for p in prompts}) < len(prompts):
        raise PromptsError(f"{path}: two prompts get the same key; avoid '|' in labels and names")


def tokenizer_name(loaded: LoadedModel) -> str:
    """The name of the loaded model's tokenizer as the catalog records it (an hf-hub model: hf-hub:ORG/NAME)."""
    return model_name(loaded.ref)[0]


@torch.inference_mode()
def encode_texts(loaded: LoadedModel, texts: list[str], batch_size: int = 256) -> np.ndarray:
    """Texts → L2-normalised float32 embeddings (rows, dim) with the model's own tokenizer."""
    tokenizer = open_clip.get_tokenizer(loaded.open_clip_name or tokenizer_name(loaded))
    out = [np.zeros((0, loaded.dim), np.float32)]
    for start in range(0, len(texts), batch_size):
        features = loaded.model.encode_text(tokenizer(texts[start:start + batch_size]).to(loaded.device))
        out.append(F.normalize(features.float(), dim=-1).cpu().numpy())
    vectors = np.concatenate(out)
    if vectors.shape[1] != loaded.dim:
        raise TextsError(f"text embeddings have dim {vectors.shape[1]}, image embeddings {loaded.dim}")
    return vectors


def text_entry(cfg: TextsConfig, loaded: LoadedModel, source: str) -> TableEntry:
    """The catalog entry: the same model/weights/dim fields an image table from this model gets."""
    return TableEntry(
        name=cfg.table, kind="text", model=loaded.name, model_ref=loaded.ref, pretrained=loaded.weights.label,
        checkpoint_sha256=loaded.weights.sha256, preprocess=f"open_clip tokenizer {tokenizer_name(loaded)}",
        dim=loaded.dim, dtype="float32", source=source, artlens_version=__version__,
    )


def _preflight(cfg: TextsConfig) -> TableEntry | None:
    """Refuse a `table` of another kind (unless `overwrite`); the `for_table` entry (StoreError if none)."""
    existing = Catalog(StoreLayout.at(cfg.store).catalog_path).get(cfg.table)
    if existing is not None and existing.kind != "text" and not cfg.overwrite:
        raise TextsError(f"table {cfg.table!r} in {cfg.store} is an {existing.kind!r} table, not a text table; "
                         "use another `table` (or `overwrite` to replace it)", argument=("table", "overwrite"))
    if cfg.for_table is None:
        return None
    with store.open(cfg.store) as s:
        return s.entry(cfg.for_table)


def embed_prompts(cfg: TextsConfig, loaded: LoadedModel | None = None) -> TextsSummary:
    """Embed every prompt of cfg.prompts into table cfg.table (the part for this file is replaced)."""
    start = time.perf_counter()
    check_table_name(cfg.table)
    path = resolve_prompts(cfg.prompts)
    prompts = load_prompts(path, cfg.prompts_format, cfg.classnames, cfg.dataset)
    image_entry = _preflight(cfg)
    loaded = loaded or load_model(cfg.model)
    shard = str(path.resolve())
    if cfg.classnames is not None:  # one part per templates file, class names file and dataset
        shard += f"#classnames={Path(cfg.classnames).resolve()}&dataset={prompts_dataset(path, cfg)}"
    entry = text_entry(cfg, loaded, shard)
    if image_entry is not None:
        check_compatible(image_entry, entry)
    vectors = encode_texts(loaded, [p.prompt for p in prompts], cfg.batch_size)
    writer = TableWriter(cfg.store, entry, overwrite=cfg.overwrite)
    rows = [{"shard": shard, **asdict(p)} for p in prompts]
    writer.commit(shard, rows, vectors, [])
    entry = writer.finish()
    return TextsSummary(table=cfg.table, prompts_file=shard, prompts=len(prompts),
                        labels=len({p.label for p in prompts}), table_rows=entry.rows,
                        for_table=cfg.for_table, elapsed_s=time.perf_counter() - start)
