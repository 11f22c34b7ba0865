"""`artlens models`: the models artlens can load and whether their weights are already here, from open_clip's
pretrained table and the local Hugging Face hub cache only (no network, no model built)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from artlens.pipeline.models import hub


@dataclass(frozen=True)
class ModelRow:
    model: str             # what `model` takes: an open_clip name, or hf-hub:ORG/NAME
    pretrained: str        # what `pretrained` takes: an open_clip tag, or `hub` for an hf-hub model
    source: str            # open_clip (its pretrained table) or hf-hub (a repository in the local hub cache)
    cached: bool           # the weights are on disk: a run needs no network
    weights: str = ""      # where they are (empty: not cached)

    def as_dict(self) -> dict:
        return asdict(self)


def _open_clip_rows(cache_dir: str | None) -> list[ModelRow]:
    import open_clip
    from open_clip import pretrained as oc_pretrained

    from artlens.pipeline.models.weights import _cached

    rows = []
    for name, tag in open_clip.list_pretrained():
        path = _cached(oc_pretrained.get_pretrained_cfg(name, tag), cache_dir) or ""
        rows.append(ModelRow(name, tag, "open_clip", bool(path), path))
    return rows


def _hub_rows(cache_dir: str | None) -> list[ModelRow]:
    rows = []
    for repo in hub.cached_models(cache_dir):
        rows.append(ModelRow(repo.model, hub.HUB, "hf-hub", repo.weights is not None, str(repo.weights or "")))
    return rows


@dataclass(frozen=True)
class ModelsConfig:
    cache_dir: str | None = None      # the open_clip/hub cache to look in (None: HF_HUB_CACHE, HF_HOME, ...)
    cached_only: bool = False         # only the models whose weights are on disk


def list_models(cfg: ModelsConfig = ModelsConfig()) -> list[ModelRow]:
    """Every (model, pretrained) open_clip knows, then the hf-hub models of the local cache; `cached_only`:
    only those whose weights are on disk."""
    rows = _open_clip_rows(cfg.cache_dir) + _hub_rows(cfg.cache_dir)
    return [r for r in rows if r.cached or not cfg.cached_only]
