"""Antialiased resize + centre crop of a whole batch of differently sized images in one GPU kernel.

The per-image path (torch `interpolate`, then a crop) costs several kernel launches and Python calls per
image, each of which gives up and retakes the GIL, which the model's thread and the loader's threads in the
same process also need (on an H100: 7,000–26,000 img/s for the geometry alone, against 48,000 for this
kernel; docs/performance.md). This Triton kernel does the same
arithmetic as torch's antialiased CUDA kernel (`upsample_gen2d_aa`: PIL's filters, bicubic a = −0.5 or
triangle, stretched by the downscaling factor; weights normalised per axis; a row sum per tap row, then
the column sum), computes only the output pixels the crop keeps, and reads each image where the decoder
left it (any strides: nvImageCodec's HWC or torchvision's CHW), so a batch costs one launch.

Results equal torch's per-image path up to float rounding: at most one level apart, on a small fraction
of pixels (measured on the GPU machine: docs/performance.md). Triton ships with CUDA builds of PyTorch;
without it (or off CUDA) the per-image path is used.
"""
from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

import torch

#: interpolation → half the filter's support at scale 1, in input pixels (torch's interp_size / 2)
HALF_SUPPORT = {"bicubic": 2.0, "bilinear": 1.0}
BLOCK = 256


@dataclass(frozen=True)
class Source:
    """Where one decoded uint8 RGB image lies: address, size, strides (elements), and the decoder's object
    that owns the memory (kept alive with this)."""
    ptr: int
    height: int
    width: int
    stride_y: int
    stride_x: int
    stride_c: int
    owner: object
    device: torch.device

    @classmethod
    def of_tensor(cls, t: torch.Tensor) -> "Source":
        """A C×H×W uint8 tensor, any strides."""
        return cls(t.data_ptr(), t.shape[1], t.shape[2], t.stride(1), t.stride(2), t.stride(0), t, t.device)

    @classmethod
    def of_cuda_array(cls, image, device: torch.device) -> "Source | None":
        """An H×W×C uint8 image on `device` exposing __cuda_array_interface__ (nvImageCodec's); None
        unless it is RGB."""
        cai = image.__cuda_array_interface__
        if len(cai["shape"]) != 3 or cai["shape"][2] != 3 or cai["typestr"] != "|u1":
            return None
        h, w, c = cai["shape"]
        sy, sx, sc = cai.get("strides") or (w * c, c, 1)
        return cls(cai["data"][0], h, w, sy, sx, sc, image, device)

    def tensor(self) -> torch.Tensor:
        """The image as a C×H×W tensor (a view, no copy)."""
        if isinstance(self.owner, torch.Tensor):
            return self.owner
        return torch.from_dlpack(self.owner).permute(2, 0, 1)


def available(device: torch.device) -> bool:
    return device.type == "cuda" and importlib.util.find_spec("triton") is not None


def taps(size: int, out: int, interpolation: str) -> int:
    """The most input pixels one output pixel reads along an axis (torch's max_interp_size)."""
    scale = size / out
    support = HALF_SUPPORT[interpolation] * (scale if scale >= 1.0 else 1.0)
    return int(math.ceil(support)) * 2 + 1


def resize_crop_batch(sources: list[Source], resized: list[tuple[int, int]], crop: tuple[int, int],
                      interpolation: str) -> torch.Tensor:
    """uint8 [N, 3, crop_h, crop_w]: image i resized to resized[i] (antialiased, align_corners=False) and
    centre-cropped as torchvision does. Runs on the current CUDA stream; the caller keeps the sources
    alive until that stream has run it."""
    ch, cw = crop
    device = sources[0].device
    meta = []
    for s, (oh, ow) in zip(sources, resized):
        top, left = int(round((oh - ch) / 2.0)), int(round((ow - cw) / 2.0))   # as torchvision's center_crop
        meta.append([s.height, s.width, oh, ow, top, left, s.stride_y, s.stride_x, s.stride_c,
                     taps(s.height, oh, interpolation), taps(s.width, ow, interpolation)])
    table = torch.tensor([[s.ptr, *row] for s, row in zip(sources, meta)], dtype=torch.int64)
    if device.type == "cuda":
        table = table.pin_memory().to(device, non_blocking=True)
    out = torch.empty(len(sources), 3, ch, cw, dtype=torch.uint8, device=device)
    _kernel()[(len(sources), -(-ch * cw // BLOCK))](
        table, out, ch, cw, HALF_SUPPORT[interpolation], interpolation == "bicubic", BLOCK)
    return out


def _kernel():
    """The Triton kernel, compiled on first use (Triton is imported only on CUDA machines)."""
    from artlens.pipeline.imaging.gpu.resample_kernel import resize_crop_kernel

    return resize_crop_kernel
