"""How visible a deformation is in pixel space, and the working size images are deformed at.

SSIM (scikit-image's structural_similarity, Wang et al. 2004, 7 x 7 windows, over the three RGB channels)
between the clean and the deformed image, both scaled to the same modest shorter side first: fast, and the
same scale for every painting whatever its resolution.
"""
from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity


def scaled(image: Image.Image, side: int, enlarge: bool = True) -> Image.Image:
    """The image with its shorter side at `side` pixels (aspect kept); unchanged when it already is, or
    when it is smaller and `enlarge` is False."""
    w, h = image.size
    factor = side / min(w, h)
    if factor == 1 or (factor > 1 and not enlarge):
        return image
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return image.resize(size, Image.Resampling.BICUBIC)


def ssim(clean: Image.Image, deformed: Image.Image, side: int) -> float:
    """SSIM of two images of the same size, compared at shorter side `side`; 1 = identical."""
    if clean.size != deformed.size:
        raise ValueError(f"SSIM of images of different sizes {clean.size} and {deformed.size}")
    a, b = (np.asarray(scaled(im, side), dtype=np.float64) for im in (clean, deformed))
    return float(structural_similarity(a, b, channel_axis=2, data_range=255.0))
