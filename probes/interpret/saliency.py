"""`artlens saliency`: a heatmap over the painting of what drives its image–text score (the cosine of the
normalised image and text embeddings), from a registry of documented methods:

- `ig`: Integrated Gradients (Sundararajan, Taly & Yan 2017) via captum, on the view pixels (`ig.py`);
- `rollout`: gradient-weighted attention rollout for ViT CLIP (Chefer, Gur & Wolf 2021) (`rollout.py`).

Writes FILE.png (the map over the region the model sees: open_clip's resize + center crop) and FILE.json
beside it (score, method and citation, steps, convergence delta, model, weights, image sha256). The image is a
file, or a store row's painting (`key`), whose map then goes where the store keeps it (rowimage.py).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from artlens.pipeline.models.load import LoadedModel
from artlens.probes.interpret import ig, rollout
from artlens.probes.interpret.config import SaliencyConfig
from artlens.probes.interpret.heatmap import save_overlay
from artlens.probes.interpret.rowimage import stored_row
from artlens.probes.interpret.source import describe
from artlens.probes.interpret.view import ClipScore, read_image, to_numpy_image


@dataclass(frozen=True)
class SaliencyMap:
    values: np.ndarray            # (H, W) over the view
    signed: bool                  # attributions (±) or a relevance ≥ 0
    score: float                  # cosine of the image and text embeddings
    details: dict = field(default_factory=dict)


def _integrated_gradients(scorer: ClipScore, view: torch.Tensor, cfg: SaliencyConfig) -> SaliencyMap:
    found = ig.integrated_gradients(scorer, view, cfg.steps, cfg.baseline, cfg.batch_size)
    values = found.attributions.sum(dim=0).numpy()
    score, start = scorer.score(view), scorer.score(found.baseline)
    return SaliencyMap(values, True, score, {
        "steps": cfg.steps, "baseline": cfg.baseline, "baseline_score": start,
        "attribution_sum": float(found.attributions.sum()), "convergence_delta": found.delta})


def _rollout(scorer: ClipScore, view: torch.Tensor, cfg: SaliencyConfig) -> SaliencyMap:
    heat, score = rollout.rollout(scorer, view)
    return SaliencyMap(heat.numpy(), False, score, {"steps": None, "convergence_delta": None})


@dataclass(frozen=True)
class Method:
    citation: str
    compute: Callable[[ClipScore, torch.Tensor, SaliencyConfig], SaliencyMap]


#: --method → how the map is computed and whom to cite (names.METHOD_CITATIONS).
METHODS: dict[str, Method] = {
    "ig": Method(ig.CITATION, _integrated_gradients),
    "rollout": Method(rollout.CITATION, _rollout),
}


def saliency_map(scorer: ClipScore, view: torch.Tensor, cfg: SaliencyConfig) -> SaliencyMap:
    """The configured method's map for one view (3, H, W) in [0, 1]."""
    return METHODS[cfg.method].compute(scorer, view, cfg)


def sidecar_path(png: str | Path) -> Path:
    return Path(png).with_suffix(".json")


def run_saliency(cfg: SaliencyConfig, loaded: LoadedModel | None = None) -> dict:
    """Compute the map, write FILE.png and FILE.json (for a `key` without `out`: at the store's place of that
    row's maps, pushed to a bucket store); returns the sidecar's content."""
    row = stored_row(cfg.source, cfg.key, cfg.method, cfg.text) if cfg.key is not None else None
    image = row.image if row is not None else read_image(cfg.image)
    out = Path(cfg.out) if cfg.out is not None else row.out
    loaded = loaded or cfg.source.load()
    scorer = ClipScore(loaded, cfg.text)
    view = scorer.view.view(image.image)
    found = saliency_map(scorer, view, cfg)
    method = METHODS[cfg.method]
    title = f'"{cfg.text}": cosine {found.score:.4f} · {method.citation}'
    save_overlay(to_numpy_image(view), found.values, found.signed, title, out)
    sidecar = {"png": str(out), "method": cfg.method, "citation": method.citation, "text": cfg.text,
               "score": found.score, **found.details, "image": None if row is not None else image.path,
               "key": cfg.key, "image_sha256": image.sha256,
               "view": {"height": int(view.shape[1]), "width": int(view.shape[2]),
                        "preprocess": loaded.preprocess_description()},
               "map": {"min": float(found.values.min()), "max": float(found.values.max()),
                       "sum": float(found.values.sum())},
               **describe(loaded), "store": cfg.source.store, "table": cfg.source.table}
    side = sidecar_path(out)
    tmp = side.with_name(f".tmp-{side.name}")   # the sidecar's rename last: a store reader sees both or none
    tmp.write_text(json.dumps(sidecar, indent=1))
    os.replace(tmp, side)
    if row is not None and cfg.out is None:
        row.layout.push(out, side)
    return sidecar
