"""The deformations of `artlens perturb`: name → function(image, level, rng, **options) → image.

Every function takes an upright RGB PIL image, one severity `level` (its meaning is in `Deformation.level`),
a seeded `numpy.random.Generator` and the options the suite gives, and returns an RGB image of the same size.
Library implementations do the work (Pillow, scikit-image, torchvision); only patch shuffling is our own.
Randomness comes only from `rng`, whose seed is derived from (key, deformation) by `seed_for`, so
the same image gives the same pixels in every run and process (with the same library versions).
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image, ImageDraw, ImageFilter
from skimage.transform import swirl as sk_swirl
from skimage.util import random_noise

from artlens.errors import UserError


@dataclass(frozen=True)
class Deformation:
    apply: Callable[..., Image.Image]        # (image, level, rng, **options) -> image of the same size
    level: str                               # what a severity level means, for the suite and the docs
    options: Mapping[str, float] = field(default_factory=dict)   # option defaults


def seed_for(key: str, deformation: str) -> int:
    """A 64-bit seed from (key, deformation): the same on every machine and in every run. The severity is
    left out on purpose: the five severities of one painting share their random layout (noise pattern, warp
    field, swirl centres, tiles, square, crop) and differ only in strength, a clean dose-response."""
    text = f"{key}\x00{deformation}".encode("utf-8")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little")


def _from_array(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "RGB")


def _short(image: Image.Image) -> int:
    return min(image.size)


def blur(image: Image.Image, level: float, rng: np.random.Generator) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius=level * _short(image)))


def noise(image: Image.Image, level: float, rng: np.random.Generator) -> Image.Image:
    noisy = random_noise(np.asarray(image), mode="gaussian", var=level ** 2, rng=rng)  # floats in [0, 1]
    return _from_array(noisy * 255.0)


def jpeg(image: Image.Image, level: float, rng: np.random.Generator) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=int(round(level)))
    return Image.open(buf).convert("RGB")


def grid_warp(image: Image.Image, level: float, rng: np.random.Generator, grid: float = 6) -> Image.Image:
    """Random offsets on a coarse (grid+1)² lattice (borders pinned), smoothly interpolated to every pixel,
    applied by torchvision's elastic_transform. `level`: largest offset as a fraction of the image side."""
    n = int(grid) + 1
    coarse = rng.uniform(-1.0, 1.0, size=(1, 2, n, n))
    coarse[:, :, [0, -1], :] = 0.0
    coarse[:, :, :, [0, -1]] = 0.0
    w, h = image.size
    field_ = F.interpolate(torch.from_numpy(coarse).float(), size=(h, w), mode="bicubic", align_corners=True)
    displacement = (2.0 * level * field_).permute(0, 2, 3, 1).contiguous()   # normalised [-1, 1] units
    return TF.elastic_transform(image, displacement, TF.InterpolationMode.BILINEAR)


def patch_shuffle(image: Image.Image, level: float, rng: np.random.Generator, grid: float = 4) -> Image.Image:
    """Cut the image into grid × grid tiles and move a `level` share of them (a cyclic shift of a random
    subset, so every chosen tile leaves its place). A remainder strip at the right/bottom stays put."""
    g = int(grid)
    arr = np.asarray(image).copy()
    th, tw = arr.shape[0] // g, arr.shape[1] // g
    tiles = [(r, c) for r in range(g) for c in range(g)]
    k = min(len(tiles), max(2, int(round(level * len(tiles)))))
    chosen = rng.permutation(len(tiles))[:k]       # nested: a higher level moves the same tiles and more
    source = arr.copy()
    for dst, src in zip(chosen, np.roll(chosen, 1)):
        (r0, c0), (r1, c1) = tiles[dst], tiles[src]
        arr[r0 * th:(r0 + 1) * th, c0 * tw:(c0 + 1) * tw] = source[r1 * th:(r1 + 1) * th, c1 * tw:(c1 + 1) * tw]
    return Image.fromarray(arr, "RGB")


def swirl(image: Image.Image, level: float, rng: np.random.Generator, count: float = 3,
          radius: float = 0.5) -> Image.Image:
    """`count` local swirls (scikit-image's swirl, whose `radius` is `radius` × the shorter side; the twist
    falls off as exp(-5 r / (ln 2 · radius))) at random centres: a melted, twisted look. `level`: strength."""
    arr = np.asarray(image).astype(np.float64)
    w, h = image.size
    for _ in range(int(count)):
        centre = (rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h)   # (column, row)
        arr = sk_swirl(arr, center=centre, strength=level, radius=radius * _short(image), mode="reflect",
                       preserve_range=True)
    return _from_array(arr)


def hue(image: Image.Image, level: float, rng: np.random.Generator) -> Image.Image:
    """Rotate every hue by `level` of the colour circle (0.5 = opposite colours), torchvision's adjust_hue."""
    return TF.adjust_hue(image, level)


def occlusion(image: Image.Image, level: float, rng: np.random.Generator, grey: float = 128) -> Image.Image:
    """A grey square covering a `level` share of the image area, at a random place."""
    w, h = image.size
    side = min(w, h, int(round(np.sqrt(level * w * h))))
    u, v = rng.uniform(size=2)                       # the same place, relative to the room left, at every level
    x, y = int(u * (w - side)), int(v * (h - side))
    out = image.copy()
    ImageDraw.Draw(out).rectangle([x, y, x + side - 1, y + side - 1], fill=(int(grey),) * 3)
    return out


def crop_rescale(image: Image.Image, level: float, rng: np.random.Generator) -> Image.Image:
    """Keep a `level` share of each side at a random place and scale it back to the full size."""
    w, h = image.size
    cw, ch = max(1, int(round(level * w))), max(1, int(round(level * h)))
    u, v = rng.uniform(0.25, 0.75, size=2)           # near the centre, the same relative place at every level
    left, top = int(u * (w - cw)), int(v * (h - ch))
    return TF.resized_crop(image, top, left, ch, cw, [h, w], TF.InterpolationMode.BICUBIC, antialias=True)


DEFORMATIONS: dict[str, Deformation] = {
    "blur": Deformation(blur, "Gaussian sigma as a fraction of the shorter side"),
    "noise": Deformation(noise, "standard deviation of Gaussian pixel noise (pixel values in [0, 1])"),
    "jpeg": Deformation(jpeg, "JPEG quality (lower is worse)"),
    "grid_warp": Deformation(grid_warp, "largest offset of a smooth grid warp, as a fraction of the side",
                             {"grid": 6}),
    "patch_shuffle": Deformation(patch_shuffle, "share of grid tiles moved", {"grid": 4}),
    "swirl": Deformation(swirl, "strength of local swirls", {"count": 3, "radius": 0.5}),
    "hue": Deformation(hue, "hue rotation as a fraction of the colour circle"),
    "occlusion": Deformation(occlusion, "share of the area covered by a grey square", {"grey": 128}),
    "crop_rescale": Deformation(crop_rescale, "share of each side kept before scaling back up"),
}


class UnknownDeformation(UserError):
    pass


def get_deformation(name: str) -> Deformation:
    try:
        return DEFORMATIONS[name]
    except KeyError:
        raise UnknownDeformation(f"unknown deformation {name!r}; deformations: {', '.join(DEFORMATIONS)}") from None


def deform(image: Image.Image, name: str, level: float, key: str,
           options: Mapping[str, float] | None = None) -> Image.Image:
    """Apply one deformation with the rng seeded from (key, name); check the result's size and mode."""
    spec = get_deformation(name)
    out = spec.apply(image, level, np.random.default_rng(seed_for(key, name)), **(options or {}))
    if out.mode != "RGB" or out.size != image.size:
        raise ValueError(f"deformation {name} returned a {out.mode} {out.size} image for a {image.size} input")
    return out
