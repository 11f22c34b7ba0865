"""`artlens models`: the open_clip models and pretrained tags, and the hf-hub models of the local cache, each
marked with whether its weights are already on disk (no network, no model built)."""
from __future__ import annotations

import argparse

FORMATS = ("table", "json")
COLUMNS = ("model", "pretrained", "source", "cached")


def models_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import option
    from artlens.pipeline.models.listing import ModelsConfig as C

    option(p, C, "cached_only", action="store_true", help="only the models whose weights are already on disk")
    option(p, C, "cache_dir", help="open_clip/hub cache to look in (default: HF_HUB_CACHE, else HF_HOME/hub, "
                                   "else ~/.cache/huggingface/hub; open_clip's URL downloads: ~/.cache/clip)")
    p.add_argument("--format", default="table", choices=FORMATS,
                   help="table (default: one line per model and tag, every row) or json (one JSON document: "
                        "a list of objects with model, pretrained, source, cached, weights)")


def models_config(a: argparse.Namespace):
    from artlens.pipeline.models.listing import ModelsConfig

    return ModelsConfig(cache_dir=a.cache_dir, cached_only=a.cached_only)


def _table(rows: list[dict]) -> str:
    cells = [list(COLUMNS)] + [[str(r[c]).lower() if c == "cached" else str(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells)


def models_run(a: argparse.Namespace) -> int:
    import json

    from artlens.pipeline.models.listing import list_models

    rows = [r.as_dict() for r in list_models(models_config(a))]
    if a.format == "json":
        print(json.dumps(rows, ensure_ascii=False, indent=1))
    else:
        print(_table(rows))
        print(f"({len(rows)} model and pretrained pairs; {sum(r['cached'] for r in rows)} with weights on disk)")
    return 0
