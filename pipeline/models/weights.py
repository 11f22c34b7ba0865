"""Resolve `pretrained` to weights: an open_clip tag (hub cache or download), a local checkpoint, or `random`.

Nothing here waits on a network that is not there: the hub cache is looked at first, and a download is
tried only when the weights' host answers within a few seconds. Otherwise the run stops at once with a
message naming the three ways to supply weights.
"""
from __future__ import annotations

import hashlib
import os
import socket
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import open_clip
from open_clip import pretrained as oc_pretrained
from open_clip.constants import HF_WEIGHTS_NAME

from artlens.errors import UserError
from artlens.pipeline.models.hub import hub_cache

RANDOM = "random"
_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode")  # create_model_and_transforms image_*


class WeightsError(UserError, RuntimeError):
    """Weights that cannot be found or fetched; the message names the three ways to supply them."""

    def __init__(self, message: str):
        super().__init__(message, argument=("pretrained", "seed"))


@dataclass(frozen=True)
class Weights:
    """Where the weights come from: `path` None means random initialisation with `seed`."""
    label: str                       # what the catalog records as `pretrained`
    path: str | None = None
    #: the checkpoint's SHA-256, or its future while `hash_in_background` reads the file (read `sha256`)
    digest: Future | str | None = field(default=None, repr=False, compare=False)
    preprocess_overrides: dict = field(default_factory=dict)
    seed: int = 0

    @property
    def sha256(self) -> str | None:
        """The checkpoint's SHA-256 (None for random weights), waiting for the hash if it is still running."""
        return self.digest.result() if isinstance(self.digest, Future) else self.digest


def how_to_supply(model: str, tag: str) -> str:
    return (
        f"Could not obtain weights for model {model!r} with `pretrained` {tag!r}. Supply them one of three ways:\n"
        f"  1. an open_clip pretrained tag whose weights are in the Hugging Face hub cache "
        f"(HF_HOME / ~/.cache/huggingface; download them once on a machine with network access), "
        f"or downloadable from here;\n"
        f"  2. a local checkpoint file: `pretrained` /path/to/open_clip_model.safetensors (or .bin/.pt);\n"
        f"  3. `pretrained` random (seeded by `seed`) for smoke runs without real weights."
    )


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


_HASHER: ThreadPoolExecutor | None = None


def hash_in_background(path: str | Path) -> Future:
    """The SHA-256 of `path`, hashed on a background thread: hashlib and file reads release the GIL, so the
    model builds and loads meanwhile (ViT-L-14's 1.7 GB checkpoint took 1.4-2.1 s to hash on the H200
    machine, beside a 3.7 s model phase; docs/performance.md). An unreadable file raises when `sha256` is read."""
    global _HASHER
    if _HASHER is None:
        _HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="artlens-sha256")
    return _HASHER.submit(sha256_file, path)


def resolve_weights(model: str, pretrained: str, seed: int = 0, cache_dir: str | None = None,
                    connect_timeout_s: float = 3.0) -> Weights:
    if pretrained == RANDOM:
        return Weights(label=f"random:seed={seed}", seed=seed)
    if os.path.isfile(pretrained):
        path = str(Path(pretrained).absolute())
        return Weights(label=path, path=path, digest=hash_in_background(path))
    name = Path(model).stem if model.endswith(".json") else model.replace("/", "-")
    cfg = oc_pretrained.get_pretrained_cfg(name, pretrained)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(name)
        known = f"known tags for {name}: {tags}" if tags else f"open_clip knows no pretrained tags for {name}"
        raise WeightsError(f"{pretrained!r} is neither a pretrained tag nor a file ({known}).\n"
                           + how_to_supply(model, pretrained))
    path = _cached(cfg, cache_dir)
    if path is None and _reachable(cfg, connect_timeout_s):
        try:
            path = oc_pretrained.download_pretrained(cfg, cache_dir=cache_dir) or None
        except Exception as exc:  # network errors of several libraries
            raise WeightsError(f"download failed: {exc}\n" + how_to_supply(model, pretrained)) from exc
    if path is None:
        raise WeightsError(how_to_supply(model, pretrained))
    overrides = {k: cfg[k] for k in _PREPROCESS_KEYS if cfg.get(k) is not None}
    return Weights(label=pretrained, path=str(path), digest=hash_in_background(path),
                   preprocess_overrides=overrides)


def _cached(cfg: dict, cache_dir: str | None) -> str | None:
    """The weights file if it is already on disk, without touching the network (the hub cache as the
    environment names it now: `hub.hub_cache`)."""
    if cfg.get("file"):
        return cfg["file"] if os.path.isfile(cfg["file"]) else None
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo_id, filename = os.path.split(cfg["hf_hub"])  # 'org/name/' (default file) or 'org/name/file'
        filename = filename or HF_WEIGHTS_NAME
        candidates = [filename.replace("pytorch_model.bin", "model.safetensors"), filename]
        for fname in candidates:
            hit = try_to_load_from_cache(repo_id, fname, cache_dir=str(hub_cache(cache_dir)))
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
    if cfg.get("url"):
        local = Path(cache_dir or "~/.cache/clip").expanduser() / os.path.basename(cfg["url"])
        if local.is_file():
            return str(local)
    return None


def _reachable(cfg: dict, timeout_s: float) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = os.environ.get("HF_ENDPOINT", "https://huggingface.co") if cfg.get("hf_hub") else cfg.get("url", "")
    host = urlparse(url).hostname
    if not host:
        return False
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False
