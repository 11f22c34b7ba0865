"""JPEG decoding on the GPU with nvJPEG (torchvision.io.decode_jpeg), for the images it can take.

`gpu_eligible` reads only the header (Pillow, no pixels) and sends to the GPU just what nvJPEG decodes the
same way Pillow does: baseline or progressive JPEG, RGB/YCbCr or greyscale, no EXIF rotation, complete
(ends with the EOI marker: nvJPEG fills a truncated file with grey where Pillow refuses it). Everything
else (PNG, CMYK, rotated, truncated, corrupt...) takes the CPU path, which decodes or reports it, so no
sample is lost. `decode_batch` decodes in chunks bounded by a pixel budget (GPU memory stays bounded
whatever the image sizes); when nvJPEG rejects a chunk, each image is retried alone and the ones it still
rejects are handed back for the CPU path.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from .decode import ImageRejected, open_checked

EXIF_ORIENTATION = 0x0112
GPU_MODES = frozenset({"RGB", "L"})
#: At most this many decoded pixels at once (≈ 200 MB of uint8 RGB).
PIXEL_BUDGET = 64_000_000


@dataclass
class Eligible:
    size: tuple[int, int]          # (width, height) from the header


def gpu_eligible(data: bytes, max_pixels: int) -> Eligible | None:
    """The header facts when nvJPEG may decode `data`, else None (the CPU path decides)."""
    try:
        img = open_checked(data, max_pixels)
    except ImageRejected:
        return None
    if img.format != "JPEG" or img.mode not in GPU_MODES or not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return None
    try:
        if img.getexif().get(EXIF_ORIENTATION, 1) != 1:
            return None
    except Exception:  # unreadable EXIF: let Pillow decide on the CPU path
        return None
    return Eligible(img.size)


def _chunks(items: list[tuple[int, bytes, Eligible]]):
    chunk, pixels = [], 0
    for item in items:
        w, h = item[2].size
        if chunk and pixels + w * h > PIXEL_BUDGET:
            yield chunk
            chunk, pixels = [], 0
        chunk.append(item)
        pixels += w * h
    if chunk:
        yield chunk


def _decode(datas: list[torch.Tensor], device: torch.device) -> list[torch.Tensor]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 points to TorchCodec
        from torchvision.io import ImageReadMode, decode_jpeg

        return decode_jpeg(datas, mode=ImageReadMode.RGB, device=device)


def decode_batch(items: list[tuple[int, torch.Tensor, Eligible]], device: torch.device):
    """Yield (index, CHW uint8 tensor on `device`) for decoded items and (index, None) for those nvJPEG
    refused, in input order. Items are (index, 1-D uint8 CPU tensor of the file, header facts)."""
    for chunk in _chunks(items):
        try:
            images = _decode([d for _, d, _ in chunk], device)
        except RuntimeError:
            images = []
            for _, data, _ in chunk:
                try:
                    images.append(_decode([data], device)[0])
                except RuntimeError:
                    images.append(None)
        for (index, _, meta), image in zip(chunk, images):
            if image is not None and tuple(image.shape[-2:]) != (meta.size[1], meta.size[0]):
                image = None  # nvJPEG and the header disagree: let Pillow decide
            yield index, image


def gpu_decode_available(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available()

