"""A model's open_clip preprocessing split where the work is cheapest to move: geometry, then scaling.

open_clip's image transform is `Compose([Resize, CenterCrop, <convert mode>, <to tensor>, Normalize])`.
`PixelPlan` keeps that exact pipeline but splits it in two halves:

* `geometry(image)` runs the resize and crop and gives **uint8** pixels (3×H×W). It works on a PIL image
  (decoded on the CPU) and, with the very same torchvision transform objects, on a uint8 CHW tensor
  decoded on the GPU by nvJPEG; torchvision's tensor resize rounds and clamps uint8 like PIL does.
* `normalize(batch)` turns a uint8 batch into the model's float input (÷255, mean/std) on the model's
  device, so workers ship a quarter of the bytes float pixels would take.

Which transforms may move is data: `GEOMETRY` (work on PIL images and tensors alike), `SKIP` (mode
conversion: decoders already give RGB) and `TO_TENSOR`. A transform not listed (a user's custom one) makes
`plan_for` fall back to `WholePlan`, which runs the untouched Compose on the CPU and ships float pixels,
and turns GPU decoding off for that model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision import transforms as T

from artlens.pipeline.imaging.gpu import resample
from artlens.pipeline.imaging.gpu.resample import Source

GEOMETRY = ("Resize", "CenterCrop", "CenterCropOrPad", "ResizeKeepRatio", "Pad")
SKIP = ("MaybeConvertMode", "_convert_to_rgb", "convert_to_rgb")
TO_TENSOR = ("ToTensor", "MaybeToTensor")
NORMALIZE = ("Normalize",)
TENSOR_SAFE = ("Resize", "CenterCrop", "Pad")  # geometry known to give the same result on uint8 tensors


def _kind(t) -> str:
    return getattr(t, "__name__", None) or type(t).__name__


@dataclass
class PixelPlan:
    """uint8 geometry in the worker, float normalisation on the device."""
    geometry_steps: tuple
    mean: tuple[float, ...]
    std: tuple[float, ...]
    gpu_ok: bool                       # every geometry step gives PIL-equal results on tensors

    ships = torch.uint8

    def key(self) -> tuple:
        """Plans with equal keys produce equal uint8 pixels: one decode serves every model sharing it."""
        return tuple(repr(s) for s in self.geometry_steps)

    def geometry(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        for step in self.geometry_steps:
            image = step(image)
        if isinstance(image, torch.Tensor):
            return image
        return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)

    def geometry_batch(self, images: list[Source]) -> torch.Tensor:
        """Decoded images of any sizes (one device) → one uint8 [N,3,H,W] batch, equal to stacking
        `geometry` of each (within one level where a kernel does it). For the usual Resize(shortest side)
        + CenterCrop: on CUDA one Triton kernel for the whole batch (pipeline/imaging/gpu/resample.py); elsewhere, per
        image, only the interpolation and a copy, rounding and clamping once for the batch."""
        fast = _resize_crop(self.geometry_steps)
        if fast is None:
            return torch.stack([self.geometry(im.tensor()) for im in images])
        resize, crop = fast
        sizes = [_resized_size((im.height, im.width), resize) for im in images]
        if resample.available(images[0].device) and all(oh >= crop[0] and ow >= crop[1] for oh, ow in sizes):
            return resample.resize_crop_batch(images, sizes, crop, resize.interpolation.value)
        out = torch.empty(len(images), 3, *crop, dtype=torch.float32, device=images[0].device)
        for i, (source, (oh, ow)) in enumerate(zip(images, sizes)):
            image = source.tensor()
            if oh < crop[0] or ow < crop[1]:
                out[i] = self.geometry(image)  # torchvision pads small images: take its own path
                continue
            x = image[None].float()
            if (oh, ow) != (source.height, source.width):
                x = torch.nn.functional.interpolate(x, size=[oh, ow], mode=resize.interpolation.value,
                                                    align_corners=False, antialias=True)
            top, left = int(round((oh - crop[0]) / 2.0)), int(round((ow - crop[1]) / 2.0))  # as center_crop
            out[i] = x[0, :, top:top + crop[0], left:left + crop[1]]
        return out.clamp_(0, 255).round_().to(torch.uint8)

    def normalize(self, batch: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        mean, std = self._constants(batch.device)
        return ((batch.float() / 255.0 - mean) / std).to(dtype)

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """mean and std on `device`, made once (no host-to-device copy per batch)."""
        cache = self.__dict__.setdefault("_on_device", {})
        if device not in cache:
            cache[device] = (torch.tensor(self.mean, device=device).view(1, -1, 1, 1),
                             torch.tensor(self.std, device=device).view(1, -1, 1, 1))
        return cache[device]

    def __getstate__(self) -> dict:  # workers get the plan without device tensors (they never touch CUDA)
        return {k: v for k, v in self.__dict__.items() if k != "_on_device"}


@dataclass
class WholePlan:
    """The model's Compose as it is, on the CPU (float pixels); for transforms artlens cannot split."""
    compose: object
    gpu_ok = False
    ships = torch.float32

    def key(self) -> tuple:
        return ("whole", repr(self.compose))

    def geometry(self, image: Image.Image) -> torch.Tensor:
        return self.compose(image)

    def normalize(self, batch: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return batch.to(dtype)


def _resize_crop(steps: tuple):
    """(Resize, crop size) when the geometry is exactly Resize(one size, antialiased) then CenterCrop."""
    if len(steps) != 2 or _kind(steps[0]) != "Resize" or _kind(steps[1]) != "CenterCrop":
        return None
    resize, crop = steps
    size = resize.size if isinstance(resize.size, int) else list(resize.size)
    if resize.max_size is not None or resize.antialias is False or resize.interpolation.value not in ("bilinear", "bicubic") \
            or not (isinstance(size, int) or len(size) in (1, 2)):
        return None
    return resize, tuple(crop.size)


def _resized_size(hw: tuple[int, int], resize) -> tuple[int, int]:
    from torchvision.transforms.functional import _compute_resized_output_size

    size = [resize.size] if isinstance(resize.size, int) else list(resize.size)
    return tuple(_compute_resized_output_size(hw, size, None))


def plan_for(preprocess) -> PixelPlan | WholePlan:
    steps = list(getattr(preprocess, "transforms", []))
    kinds = [_kind(t) for t in steps]
    if not steps or not set(kinds) <= set(GEOMETRY + SKIP + TO_TENSOR + NORMALIZE) or kinds[-1] not in NORMALIZE:
        return WholePlan(preprocess)
    cut = next((i for i, k in enumerate(kinds) if k in TO_TENSOR), None)
    if cut is None or any(k in GEOMETRY for k in kinds[cut:]):
        return WholePlan(preprocess)
    geometry = tuple(t for t, k in zip(steps[:cut], kinds[:cut]) if k in GEOMETRY)
    norm: T.Normalize = steps[-1]
    gpu_ok = all(_kind(t) in TENSOR_SAFE for t in geometry) and all(
        getattr(t, "antialias", True) in (True, None) for t in geometry)
    return PixelPlan(geometry, tuple(map(float, norm.mean)), tuple(map(float, norm.std)), gpu_ok)
