"""Bytes → an upright RGB PIL image, or a clear reason why not.

Order: read the header, refuse images over the pixel limit before decoding a single pixel (decompression
bombs), decode fully (catches corrupt and truncated files), take the first frame of animations, apply the
EXIF orientation, bring odd modes to 8-bit, composite transparency onto white, convert to RGB.
"""
from __future__ import annotations

import io
import warnings
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from artlens.errors import UserError

DEFAULT_MAX_PIXELS = 178_956_970  # PIL's decompression-bomb error threshold (2 × its warning limit)
#: The largest tar member (an image or its metadata file) read from a shard: 512 MiB, room for an uncompressed
#: 8-bit RGB image at DEFAULT_MAX_PIXELS (3 bytes × 178,956,970 pixels ≈ 512 MiB). A member declaring more is
#: a failure row and is never read (`max_member_bytes`).
DEFAULT_MAX_MEMBER_BYTES = 512 * 2**20
#: Pillow's errors for PNG text (tEXt/zTXt/iTXt) and colour-profile (iCCP) chunks that inflate past its limits.
_PNG_CHUNK_LIMITS = ("Decompressed data too large", "Too much memory used in text chunks")


class ImageRejected(UserError):
    """The bytes are not an image artlens can embed; the message says why (recorded as the failure's reason)."""


def _sixteen_bit(img: Image.Image) -> Image.Image:
    arr = np.asarray(img, dtype=np.float64)
    return Image.fromarray(np.clip(arr / 257.0, 0, 255).round().astype(np.uint8), "L")


def _float(img: Image.Image) -> Image.Image:
    arr = np.asarray(img, dtype=np.float64)
    scale = 255.0 if np.nanmax(arr, initial=0) <= 1.0 else 1.0
    return Image.fromarray(np.clip(np.nan_to_num(arr) * scale, 0, 255).round().astype(np.uint8), "L")


#: Modes that PIL's convert("RGB") would clip instead of scale: 16-bit and 32-bit grey, float.
MODE_CONVERTERS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "I;16": _sixteen_bit, "I;16L": _sixteen_bit, "I;16B": _sixteen_bit, "I;16N": _sixteen_bit,
    "I": _sixteen_bit,  # PNG 16-bit grey loads as 'I' with values 0..65535 in some Pillow versions
    "F": _float,
}
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ALPHA_MODES or "transparency" in img.info


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode → 8-bit RGB, transparent pixels composited onto white."""
    converter = MODE_CONVERTERS.get(img.mode)
    if converter is not None:
        img = converter(img)
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


def _allow_in_pillow(max_pixels: int) -> None:
    """Pillow refuses images over 2 × Image.MAX_IMAGE_PIXELS at open; lift that only when the user's
    `max_pixels` asks for more (artlens checks its own limit below)."""
    if Image.MAX_IMAGE_PIXELS is not None and 2 * Image.MAX_IMAGE_PIXELS < max_pixels:
        Image.MAX_IMAGE_PIXELS = max_pixels // 2 + 1


def open_checked(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open (header only) and refuse empty data, non-images and images over `max_pixels`."""
    if not data:
        raise ImageRejected("empty file (0 bytes)")
    _allow_in_pillow(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # artlens applies its own limit
            img = Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError:
        raise ImageRejected(f"not an image Pillow can identify (starts with {data[:16]!r})") from None
    except Image.DecompressionBombError as exc:
        raise ImageRejected(f"decompression bomb guard: {exc} (max_pixels {max_pixels:,})",
                            argument="max_pixels") from None
    except MemoryError:
        raise
    except Exception as exc:  # untrusted bytes: a plugin's header parser raises ValueError, OSError, …
        raise ImageRejected(f"cannot read the image header: {_reason(exc)}") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageRejected(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageRejected(
            f"decompression bomb guard: {width}x{height} = {width * height:,} pixels exceeds "
            f"max_pixels {max_pixels:,}", argument="max_pixels")
    return img


def _reason(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if any(limit in str(exc) for limit in _PNG_CHUNK_LIMITS):
        text += " (a PNG text or colour-profile chunk inflates past Pillow's limit)"
    return text


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Bytes → upright RGB image. Raises ImageRejected with the reason."""
    img = open_checked(data, max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Palette images with transparency expressed in bytes"
            img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb(img)
    except MemoryError:
        raise
    except Exception as exc:  # untrusted bytes: Pillow's plugins raise many exception types
        raise ImageRejected(f"cannot decode {img.format or 'image'}: {_reason(exc)}") from exc
