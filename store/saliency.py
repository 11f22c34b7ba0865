"""The saliency maps kept for a table's rows (`artlens saliency --key`): a PNG and its JSON sidecar each, at
`StoreLayout.saliency_path` (results/saliency/<table>/). The store only finds and reads them; the maps are
made by artlens.probes.interpret.

A row's maps are the sidecars whose name is the row's `saliency_prefix` followed by `<method>-<text hash>.json`
and whose `key` is the row's key, with their PNG beside them: a file named otherwise, unreadable or without its
PNG is left out (an unreadable sidecar with a StoreWarning naming it)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from artlens.store.errors import ArtlensWarning
from artlens.store.layout import SALIENCY_REST, saliency_prefix

if TYPE_CHECKING:
    from artlens.store.layout import StoreLayout


class SaliencyWarning(ArtlensWarning):
    """A saliency sidecar in the store that cannot be read (the message names it): the map is left out."""


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        warnings.warn(SaliencyWarning(f"saliency sidecar {path} cannot be read ({exc}); re-run `artlens "
                                      "saliency --key` for it"), stacklevel=3)
        return None
    return data if isinstance(data, dict) else None


def saliency_maps(layout: "StoreLayout", table: str, key: str) -> list[dict]:
    """The saliency maps of row `key` of `table`, by file name: dicts of `method`, `text`, `score` and `png`
    (the path of the PNG, beside its sidecar: wherever the store now is), plus `json` (the sidecar's path)."""
    folder = layout.saliency_dir(table)
    if layout.remote is not None:   # a URL store: the table's maps are fetched the first time they are asked for
        layout.remote.fetch(folder)
    prefix = saliency_prefix(key)
    found = []
    for sidecar in sorted(folder.glob(f"{prefix}*.json")) if folder.is_dir() else []:
        png = sidecar.with_suffix(".png")
        if not SALIENCY_REST.fullmatch(sidecar.name[len(prefix):]) or not png.is_file():
            continue
        data = _read(sidecar)
        if data is None or data.get("key") != key:
            continue
        score = data.get("score")
        found.append({"method": str(data.get("method", "")), "text": str(data.get("text", "")),
                      "score": float(score) if isinstance(score, (int, float)) else None,
                      "png": str(png), "json": str(sidecar)})
    return found
