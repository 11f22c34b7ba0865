"""`hf-hub:ORG/NAME` models: an open_clip model published on the Hugging Face Hub as `open_clip_config.json`
(`model_cfg` + `preprocess_cfg`) and a weights file, read from the local hub cache (the layout
huggingface_hub writes: `<cache>/models--ORG--NAME/refs/main`, `snapshots/<commit>/...`) or fetched once when
the Hub answers and `HF_HUB_OFFLINE` is not set.

The model is built by open_clip from the snapshot folder (`local-dir:<snapshot>`), so what the Hub's
repository says (config, preprocessing, weights) is what runs, and the commit is known: the catalog records
`pretrained` as `hub@<commit>` and the weights' sha256, so two tables are comparable only when the same
weights made them, and a table's model is loaded again from that very commit.

Nothing heavy is imported at module level (the CLI's `--help` imports `spec`, which imports this).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from artlens.errors import UserError

PREFIX = "hf-hub:"
CONFIG_NAME = "open_clip_config.json"
#: `pretrained` of an hf-hub model meaning the repository's own weights (`hub@COMMIT`: of that commit).
HUB = "hub"
#: Weights file names of a snapshot, in open_clip's order of preference (factory._find_checkpoint_in_dir).
WEIGHTS_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                 "open_clip_pytorch_model.bin", "open_clip_pytorch_model.pth", "model.safetensors",
                 "pytorch_model.bin", "pytorch_model.pth", "model.pth")
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.\-]*"
_REPO = re.compile(rf"^{_NAME}/{_NAME}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_TRUE = ("1", "true", "yes", "on")


class HubModelError(UserError):
    """An hf-hub model that is not in the cache (and cannot be fetched), or whose files open_clip cannot use."""

    def __init__(self, message: str, argument="model"):
        super().__init__(message, argument=argument)


def is_hub_model(model: str) -> bool:
    return isinstance(model, str) and model.startswith(PREFIX)


def repo_id(model: str) -> str:
    """`hf-hub:ORG/NAME` → `ORG/NAME`; anything else after the prefix is refused."""
    rid = model[len(PREFIX):]
    if not _REPO.match(rid) or ".." in rid:
        raise HubModelError(f"`model` {model!r} is not hf-hub:ORG/NAME (a Hugging Face Hub model repository)")
    return rid


def is_hub_pretrained(pretrained: str) -> bool:
    """Whether `pretrained` names the hub repository's own weights: `hub` or `hub@COMMIT`."""
    return pretrained == HUB or pretrained.startswith(HUB + "@")


def revision(pretrained: str) -> str | None:
    """The commit `hub@COMMIT` pins (None: `hub`, whatever the cache's refs/main names)."""
    if pretrained == HUB:
        return None
    commit = pretrained[len(HUB) + 1:]
    if not _COMMIT.match(commit):
        raise HubModelError(f"`pretrained` {pretrained!r}: after 'hub@' give the repository's 40-hex commit hash",
                            argument="pretrained")
    return commit


def check_pretrained(model: str, pretrained: str) -> None:
    """An hf-hub model carries its own weights: `pretrained` is hub, hub@COMMIT, random or a checkpoint file."""
    if is_hub_pretrained(pretrained):
        revision(pretrained)
    elif pretrained != "random" and not os.path.isfile(pretrained):
        raise HubModelError(f"`pretrained` {pretrained!r} does not apply to {model}: a Hub model carries its own "
                            "weights; use hub (the default), hub@COMMIT, a checkpoint file, or random",
                            argument="pretrained")


def hub_cache(cache_dir: str | None = None) -> Path:
    """The hub cache folder huggingface_hub uses, read from the environment now (huggingface_hub reads it once,
    when it is imported): `cache_dir`, else HF_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "huggingface" / "hub"


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def repo_folder(cache: Path, rid: str) -> Path:
    return cache / ("models--" + rid.replace("/", "--"))


@dataclass(frozen=True)
class Snapshot:
    """One commit of a hub model repository in the local cache."""
    model: str                   # hf-hub:ORG/NAME
    commit: str
    folder: Path                 # <cache>/models--ORG--NAME/snapshots/<commit>
    config: dict                 # the whole open_clip_config.json
    checkpoint: Path | None      # the weights file open_clip loads from the folder (None: not in the cache)

    @property
    def label(self) -> str:
        """What the catalog records as `pretrained`."""
        return f"{HUB}@{self.commit}"

    @property
    def open_clip_name(self) -> str:
        """The name open_clip builds the model (and its tokenizer) from, with no network."""
        return f"local-dir:{self.folder}"


def _cached(rid: str, filename: str, cache: Path, commit: str | None) -> Path | None:
    from huggingface_hub import try_to_load_from_cache

    try:
        hit = try_to_load_from_cache(rid, filename, cache_dir=str(cache), revision=commit)
    except Exception:  # noqa: BLE001 - an unreadable cache counts as no cache
        return None
    return Path(hit) if isinstance(hit, str) and os.path.isfile(hit) else None


def _reachable(timeout_s: float) -> bool:
    from artlens.pipeline.models.weights import _reachable as host_answers

    return not offline() and host_answers({"hf_hub": "x"}, timeout_s)


def _one_line(exc: BaseException, limit: int = 160) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:limit - 1] + '…' if len(text) > limit else text}"


def _missing(model: str, what: str, cache: Path, where: str) -> HubModelError:
    why = "HF_HUB_OFFLINE is set" if offline() else "the Hub at HF_ENDPOINT (huggingface.co) did not answer"
    return HubModelError(
        f"{model}: {what} is not in the Hugging Face hub cache {cache} (looked for {where}; {why}); download the "
        f"repository once where there is network (`hf download {model[len(PREFIX):]}`), or point HF_HUB_CACHE "
        "or `cache_dir` at a cache that holds it", argument=("model", "cache_dir"))


def _download(rid: str, filename: str | None, cache: Path, commit: str | None) -> Path:
    from open_clip.pretrained import download_pretrained_from_hf

    return Path(download_pretrained_from_hf(rid, filename=filename, revision=commit, cache_dir=str(cache)))


def read_config(model: str, path: Path) -> dict:
    """The snapshot's open_clip_config.json, checked (`model_cfg` key by key, as a JSON model config is)."""
    from artlens.pipeline.models.modelconfig import config_problem

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HubModelError(f"{model}: {path} is not a JSON file ({_one_line(exc)})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("model_cfg"), dict):
        raise HubModelError(f"{model}: {path} has no `model_cfg` object, so it is not an open_clip model "
                            "repository (open_clip reads model_cfg and preprocess_cfg from it)")
    if not isinstance(doc.get("preprocess_cfg", {}), dict):
        raise HubModelError(f"{model}: {path}: `preprocess_cfg` must be an object")
    problem = config_problem(doc["model_cfg"])
    if problem:
        raise HubModelError(f"{model}: {path}: model_cfg: {problem}")
    return doc


def checkpoint_in(folder: Path) -> Path | None:
    """The weights file open_clip would load from a snapshot folder, by its order of preference."""
    for name in WEIGHTS_NAMES:
        if (folder / name).is_file():
            return folder / name
    return None


def snapshot(model: str, pretrained: str = HUB, cache_dir: str | None = None, *, weights: bool = True,
             connect_timeout_s: float = 3.0) -> Snapshot:
    """The cached snapshot of an hf-hub model (fetched first when missing and the Hub answers). `weights`:
    the weights file is needed too (False: `pretrained` random or a checkpoint file, the config is enough)."""
    rid = repo_id(model)
    commit = revision(pretrained) if is_hub_pretrained(pretrained) else None
    cache = hub_cache(cache_dir)
    where = f"{repo_folder(cache, rid)}/snapshots/{commit or '<refs/main>'}/{CONFIG_NAME}"
    config_path = _cached(rid, CONFIG_NAME, cache, commit)
    if config_path is None and _reachable(connect_timeout_s):
        try:
            config_path = _download(rid, CONFIG_NAME, cache, commit)
        except Exception as exc:  # noqa: BLE001 - the many errors of a download: one line
            raise HubModelError(f"{model}: could not download {CONFIG_NAME} ({_one_line(exc)})") from None
    if config_path is None:
        raise _missing(model, CONFIG_NAME, cache, where)
    folder = config_path.parent
    config = read_config(model, config_path)
    checkpoint = checkpoint_in(folder)
    if checkpoint is None and weights and _reachable(connect_timeout_s):
        try:
            checkpoint = _download(rid, None, cache, folder.name)
        except Exception as exc:  # noqa: BLE001
            raise HubModelError(f"{model}: could not download its weights ({_one_line(exc)})") from None
    if checkpoint is None and weights:
        raise _missing(model, "its weights file", cache, f"{folder}/{{{','.join(WEIGHTS_NAMES[:3])}}}")
    return Snapshot(model=model, commit=folder.name, folder=folder, config=config, checkpoint=checkpoint)


@dataclass(frozen=True)
class CachedRepo:
    model: str                   # hf-hub:ORG/NAME
    commit: str
    weights: Path | None         # the weights file of that snapshot (None: only its config is cached)


def cached_models(cache_dir: str | None = None) -> list[CachedRepo]:
    """The open_clip models (repositories with open_clip_config.json) in the local hub cache, by walking its
    folders (no network, no huggingface_hub cache scan of every blob)."""
    cache = hub_cache(cache_dir)
    found = []
    for repo in sorted(cache.glob("models--*--*")) if cache.is_dir() else []:
        org, _, name = repo.name[len("models--"):].partition("--")
        ref = repo / "refs" / "main"
        commits = [ref.read_text(encoding="utf-8").strip()] if ref.is_file() else []
        commits += sorted(p.name for p in (repo / "snapshots").glob("*") if p.name not in commits)
        for commit in commits:
            folder = repo / "snapshots" / commit
            if (folder / CONFIG_NAME).is_file():
                found.append(CachedRepo(f"{PREFIX}{org}/{name}", commit, checkpoint_in(folder)))
                break
    return found
