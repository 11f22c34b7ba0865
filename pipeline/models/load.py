"""Load an open_clip model and its own preprocessing, and embed batches of images with it."""
from __future__ import annotations

import contextlib
import hashlib
import zipfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from artlens.errors import UserError
from artlens.pipeline.models import hub
from artlens.pipeline.models.halfnorm import half_layer_norms
from artlens.pipeline.models.modelconfig import read_model_config
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.imaging.pixels import PixelPlan, WholePlan, plan_for
from artlens.pipeline.models.weights import Weights, hash_in_background, resolve_weights

#: --precision → (open_clip precision, input dtype)
PRECISIONS = {
    "fp32": ("fp32", torch.float32),
    "fp16": ("fp16", torch.float16),
    "bf16": ("bf16", torch.bfloat16),
}
#: What `auto` means per device type: half precision where tensor cores make it fast and parity holds
#: (CUDA fp16 vs CPU fp32: minimum cosine 0.9999983 on the real paintings, docs/performance.md), and whether a
#: half-precision image tower's layer norms run in that precision (`halfnorm`; measured on CUDA only).
DEVICE_DEFAULTS = {
    "cuda": {"precision": "fp16", "batch_size": 512, "half_layer_norms": True},
    "cpu": {"precision": "fp32", "batch_size": 64, "half_layer_norms": False},
    "mps": {"precision": "fp32", "batch_size": 64, "half_layer_norms": False},
}


def device_default(device: torch.device, what: str):
    return DEVICE_DEFAULTS.get(device.type, DEVICE_DEFAULTS["cpu"])[what]


class ModelError(UserError):
    """A model, device or table whose model cannot be loaded as asked."""


@dataclass
class LoadedModel:
    model: torch.nn.Module
    preprocess: object                # torchvision transform: PIL RGB image → tensor
    name: str                         # what the catalog records as `model`
    ref: str                          # how to load it again: open_clip name or absolute config path
    weights: Weights
    device: torch.device
    dtype: torch.dtype
    dim: int
    precision: str = "fp32"
    #: the name open_clip built the model (and builds its tokenizer) from, when it is not `ref` (an hf-hub
    #: model: `local-dir:` of its cached snapshot, so nothing asks the network again)
    open_clip_name: str = ""

    @property
    def plan(self) -> PixelPlan | WholePlan:
        """The preprocessing split into worker geometry (uint8) and device normalisation."""
        if not hasattr(self, "_plan"):
            self._plan = plan_for(self.preprocess)
        return self._plan

    def preprocess_description(self) -> str:
        return f"exif-transpose, RGB (alpha on white), then open_clip: {self.preprocess!r}".replace("\n", " ")

    @torch.inference_mode()
    def embed_on_device(self, pixels: torch.Tensor) -> torch.Tensor:
        """A batch of pixels → L2-normalised float32 embeddings, left on the device (no synchronisation).
        uint8 pixels come from `plan.geometry` and are normalised here; float pixels are model input."""
        pixels = pixels.to(self.device, non_blocking=True)
        pixels = self.plan.normalize(pixels, self.dtype) if pixels.dtype == torch.uint8 else pixels.to(self.dtype)
        return F.normalize(self.model.encode_image(pixels).float(), dim=-1)

    def embed(self, pixels: torch.Tensor) -> np.ndarray:
        """A batch of pixels (uint8 from the plan, or the Compose's float output) → float32 numpy."""
        return self.embed_on_device(pixels).cpu().numpy()


#: The device types a model can run on here (`auto` picks cuda when there is one, else cpu).
DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        found = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        found = None
    if found is None or found.type not in DEVICE_TYPES:
        raise ModelError(f"unknown `device` {device!r}; use auto, cpu, cuda, cuda:N or mps", argument="device")
    if found.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"`device` {device} asked for, but torch sees no CUDA device", argument="device")
        count = torch.cuda.device_count()
        if found.index is not None and found.index >= count:
            raise ModelError(f"`device` {device} asked for, but torch sees {count} CUDA device(s) "
                             f"(cuda:0 to cuda:{count - 1})", argument="device")
    if found.type == "mps" and not torch.backends.mps.is_available():
        raise ModelError(f"`device` {device} asked for, but torch sees no MPS device", argument="device")
    return found


def model_name(model: str) -> tuple[str, str, str]:
    """(open_clip name, catalog label, reference to load it again).
    A JSON config path is registered with open_clip under its stem."""
    path = Path(model)
    if model.endswith(".json"):
        if not path.is_file():
            raise ModelError(f"model config {model} does not exist")
        read_model_config(path)  # a typo in a key or a value's type: one line naming the file and the key
        open_clip.add_model_config(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return path.stem, f"{path.stem} (config {path.name} sha256:{digest})", str(path.absolute())
    if hub.is_hub_model(model):
        hub.repo_id(model)  # refuse a malformed name at once
        return model, model, model
    name = model.replace("/", "-")
    if name not in open_clip.list_models():
        raise ModelError(f"unknown open_clip model {model!r}; known models: {', '.join(open_clip.list_models())}"
                         " — or pass hf-hub:ORG/NAME (a Hugging Face Hub model) or the path of an open_clip JSON "
                         "model config")
    return name, name, name


def hub_weights(snap: hub.Snapshot | None, spec: ModelSpec) -> Weights:
    """The weights of an hf-hub model: the snapshot's own (`hub`, `hub@COMMIT`), random, or a checkpoint file."""
    if not hub.is_hub_pretrained(spec.pretrained):
        return resolve_weights(spec.model, spec.pretrained, seed=spec.seed, cache_dir=spec.cache_dir)
    path = str(snap.checkpoint)
    return Weights(label=snap.label, path=path, digest=hash_in_background(path))


def _creator(name: str, snap: hub.Snapshot | None, **kwargs):
    """create(weights_path) → open_clip's (model, train transform, preprocess); None: random initialisation.
    An hf-hub model is built from its snapshot folder (config and preprocessing from open_clip_config.json);
    its own weights are loaded by open_clip from there, another checkpoint after the build."""
    build = partial(open_clip.create_model_and_transforms, name, **kwargs)
    if snap is None:
        return lambda path: build(pretrained=path)

    def create(path):
        own = path is not None and snap.checkpoint is not None and Path(path) == snap.checkpoint
        built = build(load_weights=own)
        if path is not None and not own:
            open_clip.load_checkpoint(built[0], path, strict=True, weights_only=True, device="cpu")
        return built
    return create


def mapped_loads(path: str | None):
    """While open_clip loads the checkpoint at `path`: `torch.load` maps a zip-format file (what torch.save
    writes) instead of reading it into memory, so its tensors go from the page cache straight into the
    model's on the device (ViT-L-14 from a cached file: 1.47 s read into memory, 0.23 s mapped, on the H200
    machine). Other files (safetensors, legacy pickles) load as they would."""
    try:
        from torch.utils.serialization import config
    except ImportError:  # a torch without serialization options
        return contextlib.nullcontext()
    if path is None or not zipfile.is_zipfile(path):
        return contextlib.nullcontext()
    return config.patch({"load.mmap": True})


def load_model(spec: ModelSpec) -> LoadedModel:
    name, label, ref = model_name(spec.model)
    snap = None
    if hub.is_hub_model(spec.model):
        hub.check_pretrained(spec.model, spec.pretrained)
        snap = hub.snapshot(spec.model, spec.pretrained, spec.cache_dir,
                            weights=hub.is_hub_pretrained(spec.pretrained))
        name = snap.open_clip_name
        weights = hub_weights(snap, spec)
    else:
        weights = resolve_weights(spec.model, spec.pretrained, seed=spec.seed, cache_dir=spec.cache_dir)
    device = resolve_device(spec.device)
    precision = device_default(device, "precision") if spec.precision == "auto" else spec.precision
    oc_precision, dtype = PRECISIONS[precision]
    torch.manual_seed(weights.seed)
    create = _creator(name, snap, precision=oc_precision, device=device, cache_dir=spec.cache_dir,
                      **{f"image_{k}": v for k, v in weights.preprocess_overrides.items()})
    # A checkpoint overwrites the random initialisation: build where the model runs (on CUDA the init takes
    # milliseconds, not ViT-L-14's 3 s on the CPU). Random weights are drawn on the CPU, the same on every device.
    try:
        with device if weights.path is not None else torch.device("cpu"), mapped_loads(weights.path):
            model, _, preprocess = create(weights.path)
    except Exception as exc:
        problem = _why_not_built(spec, weights, create, exc)
        if problem is None:
            raise
        raise problem from exc
    model.eval()
    if dtype != torch.float32 and device_default(device, "half_layer_norms"):
        half_layer_norms(getattr(model, "visual", model), dtype)
    dim = _embed_dim(model)
    return LoadedModel(model=model, preprocess=preprocess, name=label, ref=ref, weights=weights,
                       device=device, dtype=dtype, dim=dim, precision=precision,
                       open_clip_name=name if snap is not None else "")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[:limit - 1] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _why_not_built(spec: ModelSpec, weights: Weights, create, exc: Exception) -> ModelError | None:
    """Why open_clip could not build the model with its weights, found by building it again without them:
    the JSON model config at fault, or the `pretrained` file (not a checkpoint, or one of another
    architecture). None: neither (out of memory, a bug), and the error is raised as it was."""
    if isinstance(exc, (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), UserError)):
        return None
    model = None
    if weights.path is not None:
        torch.manual_seed(weights.seed)
        try:
            model = create(None)[0]
        except Exception:  # noqa: BLE001 - the model does not build at all: the config's fault, below
            model = None
    if model is not None:
        message = f"`pretrained` {weights.path} {_checkpoint_problem(model, weights.path, exc)}"
        return ModelError(message, argument=("pretrained", "model") if "`model`" in message else "pretrained")
    if spec.model.endswith(".json") or hub.is_hub_model(spec.model):
        what = spec.model if spec.model.endswith(".json") else f"{hub.CONFIG_NAME} of {spec.model}"
        return ModelError(f"the config {what} of `model` does not build an open_clip model "
                          f"({_one_line(exc)}); check its values against open_clip's own model configs",
                          argument="model")
    return None


def _looks_like_text(path: str) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    try:
        return all(c.isprintable() or c.isspace() for c in head.decode("utf-8"))
    except UnicodeDecodeError:
        return False


def _checkpoint_problem(model: torch.nn.Module, path: str, exc: Exception) -> str:
    """Why the checkpoint at `path` does not load into `model` (which builds without it), in one phrase."""
    from open_clip.factory import load_state_dict

    try:
        state = load_state_dict(path)
    except Exception as bad:  # noqa: BLE001 - whatever torch or safetensors say about a file that is not theirs
        why = ("it holds text" if _looks_like_text(path) else
               "torch.load refused it with weights_only=True (not a plain state dict of tensors)"
               if "Weights only load failed" in str(bad) else _one_line(bad, 120))
        return f"is not a checkpoint of weights (a PyTorch state dict .pt/.bin, or .safetensors): {why}"
    if not isinstance(state, dict) or not state:
        return f"holds no state dict of weights (it holds a {type(state).__name__})"
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(getattr(state[k], "shape", ())) != tuple(own[k].shape)]
    if not (missing or unexpected or shapes):
        return f"does not load into the model: {_one_line(exc, 160)}"
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's {len(own)} weights missing (e.g. {missing[0]!r})")
    if unexpected:
        parts.append(f"{len(unexpected)} weights the model does not have (e.g. {unexpected[0]!r})")
    if shapes:
        k = shapes[0]
        parts.append(f"{len(shapes)} of another shape (e.g. {k!r}: {tuple(state[k].shape)} in the file, "
                     f"{tuple(own[k].shape)} in the model)")
    return (f"is a checkpoint of another architecture: {'; '.join(parts)}; pass a checkpoint of this `model`, "
            "or the `model` it was trained with")


def _embed_dim(model: torch.nn.Module) -> int:
    out = getattr(model.visual, "output_dim", None)
    if out is None:
        size = model.visual.image_size
        size = size if isinstance(size, (tuple, list)) else (size, size)
        with torch.inference_mode():
            probe = torch.zeros(1, 3, *size, device=next(model.parameters()).device,
                                dtype=next(model.parameters()).dtype)
            out = model.encode_image(probe).shape[-1]
    return int(out)


def spec_for_table(entry, device: str = "auto", cache_dir: str | None = None) -> ModelSpec:
    """The ModelSpec that made a store table (from its catalog entry), to encode queries the same way.
    Always fp32: the catalog does not record the precision, and fp32 is the reference the others match."""
    if entry.pretrained == "imported":
        raise ModelError(f"table {entry.name!r} was imported ({entry.model}); artlens does not know how to load "
                         "its model, so text and image queries cannot be encoded for it")
    if not entry.model_ref:
        raise ModelError(f"the catalog entry of {entry.name!r} records no model reference (written by an older "
                         "artlens); re-extract the table with `overwrite`", argument="overwrite")
    pretrained, seed = entry.pretrained, 0
    if pretrained.startswith("random:seed="):
        pretrained, seed = "random", int(pretrained.split("=", 1)[1])
    return ModelSpec(model=entry.model_ref, pretrained=pretrained, precision="fp32", device=device, seed=seed,
                     cache_dir=cache_dir)


def load_for_table(entry, device: str = "auto", cache_dir: str | None = None) -> LoadedModel:
    """Load the table's own model and weights; refuse weights whose checksum differs from the catalog's."""
    loaded = load_model(spec_for_table(entry, device, cache_dir))
    if entry.checkpoint_sha256 and loaded.weights.sha256 != entry.checkpoint_sha256:
        raise ModelError(f"the weights found for {entry.pretrained!r} (sha256 {loaded.weights.sha256}) are not "
                         f"the ones table {entry.name!r} was made with (sha256 {entry.checkpoint_sha256})")
    return loaded
