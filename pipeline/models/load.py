"""Load an open_clip model and its own preprocessing, and embed batches of images with it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from artlens.errors import UserError
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.imaging.pixels import PixelPlan, WholePlan, plan_for
from artlens.pipeline.models.weights import Weights, resolve_weights

#: --precision → (open_clip precision, input dtype)
PRECISIONS = {
    "fp32": ("fp32", torch.float32),
    "fp16": ("fp16", torch.float16),
    "bf16": ("bf16", torch.bfloat16),
}
#: What `auto` means per device type: half precision where tensor cores make it fast and parity holds
#: (CUDA fp16 vs CPU fp32: minimum cosine 0.9999983 on the real paintings, docs/performance.md).
DEVICE_DEFAULTS = {
    "cuda": {"precision": "fp16", "batch_size": 512},
    "cpu": {"precision": "fp32", "batch_size": 64},
    "mps": {"precision": "fp32", "batch_size": 64},
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


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {device} asked for, but torch sees no CUDA device", argument="device")
    return torch.device(device)


def model_name(model: str) -> tuple[str, str, str]:
    """(open_clip name, catalog label, reference to load it again).
    A JSON config path is registered with open_clip under its stem."""
    path = Path(model)
    if model.endswith(".json"):
        if not path.is_file():
            raise ModelError(f"model config {model} does not exist")
        open_clip.add_model_config(path)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        return path.stem, f"{path.stem} (config {path.name} sha256:{digest})", str(path.absolute())
    name = model.replace("/", "-")
    if name not in open_clip.list_models():
        raise ModelError(f"unknown open_clip model {model!r}; known models: {', '.join(open_clip.list_models())}"
                         " — or pass the path of an open_clip JSON model config")
    return name, name, name


def load_model(spec: ModelSpec) -> LoadedModel:
    name, label, ref = model_name(spec.model)
    weights = resolve_weights(spec.model, spec.pretrained, seed=spec.seed, cache_dir=spec.cache_dir)
    device = resolve_device(spec.device)
    precision = device_default(device, "precision") if spec.precision == "auto" else spec.precision
    oc_precision, dtype = PRECISIONS[precision]
    torch.manual_seed(weights.seed)
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=weights.path, precision=oc_precision, device=device,
        cache_dir=spec.cache_dir, **{f"image_{k}": v for k, v in weights.preprocess_overrides.items()},
    )
    model.eval()
    dim = _embed_dim(model)
    return LoadedModel(model=model, preprocess=preprocess, name=label, ref=ref, weights=weights,
                       device=device, dtype=dtype, dim=dim, precision=precision)


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
