"""Hugging Face datasets as a source: `hf://datasets/OWNER/NAME[@REVISION]`, a local folder in the Hub's layout,
any other fsspec URL of one (`memory://`, `s3://`), or, from Python, a `datasets.Dataset` / `DatasetDict`.

The Hub and a local folder share one code path over an fsspec filesystem: list the repository's Parquet
files, pick the subset (config) and splits (README.md's `configs` data_files, else the layouts the Hub
writes: `data/<split>-00000-of-00002.parquet`, `<config>/<split>/*.parquet`, `<config>/<split>-*.parquet`),
read each file's `features` (the `huggingface` key of its Parquet schema metadata, else README.md's
`dataset_info`), then read the rows as the Parquet source does (`sources.table_items`). A `ClassLabel`
column holds its names (`style = 12` → `"Impressionism"`, the integer kept as `style_idx`); rows carry their
`split` when the layout names it.
"""
from __future__ import annotations

import fnmatch
import json
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from artlens.pipeline.shards.config import ShardsConfig
from artlens.pipeline.shards.sources import SourceError, SourceItem, find_image_column, table_items

README = "README.md"


@dataclass(frozen=True)
class HubFile:
    path: str        # as the filesystem names it
    rel: str         # relative to the dataset's root (the item name of a row without a path)
    config: str
    split: str | None


# ---------------------------------------------------------------- is it a Hugging Face dataset?
def is_dataset_object(source: Any) -> bool:
    """A `datasets.Dataset` (or a DatasetDict of them), told by what it has, so `datasets` is never imported here."""
    if isinstance(source, Mapping):
        return bool(source) and all(is_dataset_object(v) for v in source.values())
    return hasattr(source, "features") and hasattr(source, "with_format")


def describe_source(source: Any) -> str:
    """A source as the manifest names it: a path or URL as given; a `datasets` object in one line (its
    builder name, splits and rows where it has them, and its fingerprint), not its multi-line repr."""
    if not is_dataset_object(source):
        return str(source)
    parts = source.items() if isinstance(source, Mapping) else [(getattr(source, "split", None), source)]
    splits = ", ".join(f"{name or 'data'}: {getattr(ds, 'num_rows', '?')} rows" for name, ds in parts)
    first = next(iter(dict(parts).values()), None)
    info = getattr(first, "info", None)
    name = getattr(info, "dataset_name", None) or getattr(info, "builder_name", None) or "in memory"
    fingerprint = getattr(first, "_fingerprint", None)
    described = f"datasets.{type(source).__name__} {name} ({splits})"
    return described + (f" fingerprint {fingerprint}" if fingerprint else "")


def is_hf_source(source: Any) -> bool:
    """Whether `artlens shards` reads `source` as a Hugging Face dataset without being told (`format` hf):
    a dataset object, an `hf://` URL, or a local folder whose README.md front matter has `dataset_info` or
    `configs` and which holds Parquet files."""
    if is_dataset_object(source):
        return True
    if not isinstance(source, (str, Path)):
        return False
    if str(source).startswith("hf://"):
        return True
    root = Path(source)
    if not (root / README).is_file():
        return False
    try:
        card = front_matter((root / README).read_text(encoding="utf-8", errors="replace"))
    except SourceError:
        return False
    return bool({"dataset_info", "configs"} & set(card)) and next(root.rglob("*.parquet"), None) is not None


# ---------------------------------------------------------------- the dataset card
def front_matter(text: str) -> dict:
    """The YAML block between the leading `---` lines of a dataset card (README.md); {} without one."""
    import yaml

    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    end = next((i for i, line in enumerate(lines[1:], 1) if line.strip() == "---"), None)
    if end is None:
        return {}
    try:
        card = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        raise SourceError(f"{README}: its YAML front matter does not parse: {str(exc).splitlines()[0]}") from None
    return card if isinstance(card, dict) else {}


def _card_features(features: Any) -> dict:
    """README `dataset_info.features` (a list of {name, dtype}) → the `datasets` dict form
    ({name: {"_type": "ClassLabel", "names": [...]}, ...}); only ClassLabel and Image matter here."""
    out = {}
    for entry in features if isinstance(features, list) else []:
        if not isinstance(entry, dict) or "name" not in entry:
            continue
        dtype = entry.get("dtype")
        if dtype == "image":
            out[entry["name"]] = {"_type": "Image"}
        elif isinstance(dtype, dict) and isinstance(dtype.get("class_label"), dict):
            names = dtype["class_label"].get("names")
            if isinstance(names, dict):  # {'0': 'Abstract_Expressionism', ...}
                by_index = {int(k): v for k, v in names.items()}
                names = [by_index.get(i) for i in range(max(by_index, default=-1) + 1)]
            out[entry["name"]] = {"_type": "ClassLabel", "names": list(names or [])}
    return out


def _card_info(card: dict, config: str) -> dict:
    """The dataset_info entry of `config` (dataset_info is one dict, or a list with `config_name`s)."""
    info = card.get("dataset_info")
    if isinstance(info, list):
        return next((i for i in info if isinstance(i, dict) and i.get("config_name", "default") == config), {})
    return info if isinstance(info, dict) else {}


def schema_features(schema) -> dict | None:
    """The `features` datasets wrote into a Parquet file's schema metadata (`huggingface` key), if any."""
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    features = (info.get("info") or {}).get("features") if isinstance(info, dict) else None
    return features if isinstance(features, dict) else None


# ---------------------------------------------------------------- which files
def _layout(rel: str) -> tuple[str, str | None]:
    """(config, split) of a Parquet file by the layouts the Hub writes."""
    parts = rel.split("/")
    stem = parts[-1].rsplit(".", 1)[0]
    name_split = stem.split("-")[0]
    if len(parts) == 1:
        return "default", name_split
    if parts[0] == "data":
        return "default", parts[1] if len(parts) > 2 else name_split
    if len(parts) >= 3:
        return parts[0], parts[1]
    return parts[0], name_split


def _card_files(card: dict, rels: list[str]) -> list[tuple[str, str, str]] | None:
    """(rel, config, split) of the files README's `configs` name (data_files patterns), or None without any."""
    configs = card.get("configs")
    if not isinstance(configs, list):
        return None
    out = []
    for entry in configs:
        if not isinstance(entry, dict):
            continue
        config = str(entry.get("config_name", "default"))
        files = entry.get("data_files", [])
        files = [{"split": "train", "path": files}] if isinstance(files, str) else files
        for spec in files if isinstance(files, list) else []:
            if isinstance(spec, str):
                spec = {"split": "train", "path": spec}
            patterns = spec.get("path", [])
            patterns = [patterns] if isinstance(patterns, str) else patterns
            for rel in rels:
                if any(fnmatch.fnmatchcase(rel, p.lstrip("./")) for p in patterns):
                    out.append((rel, config, str(spec.get("split", "train"))))
    return out


def hub_files(fs, root: str, card: dict, subset: str | None, split: str | None) -> list[HubFile]:
    """The Parquet files of the chosen subset and splits, in name order."""
    root = root.rstrip("/")
    try:
        found = sorted(p for p in fs.find(root) if p.endswith(".parquet"))
    except FileNotFoundError:
        found = []
    rels = {_relative(p, root): p for p in found}
    listed = _card_files(card, sorted(rels))
    listed = listed if listed else [(rel, *_layout(rel)) for rel in sorted(rels)]
    if not listed:
        raise SourceError(f"no Parquet file in the dataset at {root} (looked for data/<split>-*.parquet, "
                          "<config>/<split>/*.parquet and README.md's configs)")
    configs = sorted({c for _, c, _ in listed})
    if subset is None and len(configs) > 1:
        chosen = next((str(c.get("config_name")) for c in card.get("configs") or []
                       if isinstance(c, dict) and c.get("default")), None)
        if chosen is None:
            raise SourceError(f"the dataset at {root} has the subsets {configs}; choose one with `subset`",
                              argument="subset")
        subset = chosen
    if subset is not None and subset not in configs:
        raise SourceError(f"subset {subset!r} not in the dataset at {root}; it has {configs}", argument="subset")
    listed = [x for x in listed if subset is None or x[1] == subset]
    if split:
        wanted = [s.strip() for s in split.split(",") if s.strip()]
        splits = sorted({s for _, _, s in listed if s})
        missing = [s for s in wanted if s not in splits]
        if missing:
            raise SourceError(f"split {missing[0]!r} not in the dataset at {root}; it has {splits}",
                              argument="split")
        listed = [x for x in listed if x[2] in wanted]
    seen, files = set(), []
    for rel, config, part in listed:
        if rel not in seen:
            seen.add(rel)
            files.append(HubFile(rels[rel], rel, config, part))
    return files


def _relative(path: str, root: str) -> str:
    if path.startswith(root + "/"):
        return path[len(root) + 1:]
    # hf://datasets/o/n@rev: listings may name the repository without its revision
    bare = root.split("@", 1)[0]
    return path[len(bare) + 1:] if path.startswith(bare + "/") else posixpath.basename(path)


# ---------------------------------------------------------------- rows
def class_labels(features: dict | None) -> dict[str, list]:
    """Column → ClassLabel names, from features in the `datasets` dict form."""
    out = {}
    for name, feature in (features or {}).items():
        if isinstance(feature, dict) and feature.get("_type") == "ClassLabel":
            if isinstance(feature.get("names"), list):
                out[name] = feature["names"]
    return out


def image_feature(features: dict | None) -> str | None:
    return next((n for n, f in (features or {}).items() if isinstance(f, dict) and f.get("_type") == "Image"), None)


def labeller(labels: dict[str, list], split: str | None = None,
             local_images: bool = False) -> Callable[[dict], None]:
    """The row edit of a Hugging Face row: ClassLabel integers → names (the integer kept as `<col>_idx`, a
    -1 or out-of-range integer a null name), `split` added when the row has none; with `local_images`, an
    Image struct holding only a local path gets that file's bytes (a Dataset made from image files)."""
    def edit(row: dict) -> None:
        for column, names in labels.items():
            if column not in row:
                continue
            idx = row[column]
            target = f"{column}_idx"
            n = 2
            while target in row:
                target, n = f"{column}_idx_{n}", n + 1
            row[target] = idx
            row[column] = names[idx] if isinstance(idx, int) and 0 <= idx < len(names) else None
        if split is not None:
            row.setdefault("split", split)
        if local_images:
            for value in row.values():
                if isinstance(value, dict) and set(value) == {"bytes", "path"} and value["bytes"] is None \
                        and isinstance(value["path"], str) and Path(value["path"]).is_file():
                    value["bytes"] = Path(value["path"]).read_bytes()
    return edit


def _hub_plan(fs, files: list[HubFile], card_features: dict, image_column: str | None) -> list[tuple]:
    """(file, image column, row edit) of every file, from its footer: an unreadable file or a missing image
    column fails here, before any output is made."""
    plan = []
    for file in files:
        try:
            with fs.open(file.path, "rb") as fh:
                schema = pq.read_schema(fh)
        except (pa.ArrowException, OSError) as exc:
            raise SourceError(f"{file.rel} is not a readable Parquet file: {str(exc).splitlines()[0]}") from None
        features = schema_features(schema) or card_features
        column = image_column or image_feature(features)
        column = find_image_column(schema, column if column in schema.names else image_column)
        plan.append((file, column, labeller(class_labels(features), file.split)))
    return plan


def _hub_items(fs, plan: list[tuple]) -> Iterator[SourceItem]:
    for file, column, edit in plan:
        with fs.open(file.path, "rb") as fh:
            yield from table_items(pq.ParquetFile(fh).iter_batches(batch_size=256), column, file.rel, edit)


def _dataset_items(source: Any, cfg: ShardsConfig) -> Iterator[SourceItem]:
    if isinstance(source, Mapping):  # a DatasetDict: its splits, in order
        wanted = [s.strip() for s in cfg.split.split(",")] if cfg.split else list(source)
        missing = [s for s in wanted if s not in source]
        if missing:
            raise SourceError(f"split {missing[0]!r} not in the DatasetDict; it has {list(source)}", argument="split")
        parts = [(source[s], s) for s in wanted]
    else:
        parts = [(source, str(source.split) if getattr(source, "split", None) else None)]
    checked = []
    for dataset, split in parts:
        features = dataset.features.to_dict()
        table = dataset.with_format("arrow")
        column = cfg.image_column or image_feature(features)
        if column is None or column not in dataset.column_names:
            column = find_image_column(dataset.data.schema, cfg.image_column)
        checked.append((table, column, labeller(class_labels(features), split, local_images=True), split))
    return _dataset_rows(checked)


def _dataset_rows(checked: list) -> Iterator[SourceItem]:
    for table, column, edit, split in checked:
        yield from table_items(table.iter(batch_size=256), column, split or "dataset", edit)


def hf_source(cfg: ShardsConfig) -> Iterator[SourceItem]:
    """A Hugging Face dataset (see the module's docstring); everything is checked before the first item."""
    if cfg.metadata or cfg.class_file:
        raise SourceError("a Hugging Face dataset carries its own columns; `metadata` and `class_file` are for "
                          "folder and wikiart sources", argument=("metadata", "class_file"))
    if is_dataset_object(cfg.source):
        return _dataset_items(cfg.source, cfg)
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(str(cfg.source))
    except (ImportError, ValueError) as exc:
        raise SourceError(f"cannot open {cfg.source}: {exc} (hf:// needs huggingface_hub)") from None
    card = {}
    try:
        with fs.open(posixpath.join(root.rstrip("/"), README), "rb") as fh:
            card = front_matter(fh.read().decode("utf-8", errors="replace"))
    except FileNotFoundError:
        pass
    files = hub_files(fs, root, card, cfg.subset, cfg.split)
    card_features = _card_features(_card_info(card, files[0].config).get("features"))
    return _hub_items(fs, _hub_plan(fs, files, card_features, cfg.image_column))
