"""Deterministic bytes of awkward-but-valid and invalid image files, for decoder tests.

Every function returns ``bytes`` (write them to a file with whatever name the test
needs). Nothing here is random except through fixed seeds, so the same call always
gives the same bytes with the same Pillow/libjpeg/zlib versions. Only Pillow, numpy,
zlib and struct are used.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

RED = (255, 0, 0)
BLUE = (0, 0, 255)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Pillow's exif_transpose applies these for each EXIF Orientation value; the stored
# pixels are the upright image under the inverse transform (6 and 8 swap, the rest
# are their own inverse).
_INVERSE_OF_EXIF_TRANSPOSE = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # exif_transpose applies ROTATE_270
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,  # exif_transpose applies ROTATE_90
}


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _noise_rgb(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.RandomState(seed)
    return Image.fromarray(rng.randint(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _ihdr(w: int, h: int, bit_depth: int, colour_type: int) -> bytes:
    # compression 0, filter method 0, no interlace
    return _png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, colour_type, 0, 0, 0))


# --------------------------------------------------------------------------- valid


def jpeg(w: int = 96, h: int = 64, color=(200, 30, 30)) -> bytes:
    """Plain baseline RGB JPEG of one solid colour."""
    return _save(Image.new("RGB", (w, h), color), "JPEG", quality=95)


def png(w: int = 96, h: int = 64, color=(30, 200, 30)) -> bytes:
    """Plain 8-bit RGB PNG of one solid colour."""
    return _save(Image.new("RGB", (w, h), color), "PNG")


def png_rgba(w: int = 96, h: int = 64) -> bytes:
    """RGBA PNG: LEFT half fully transparent (0, 0, 0, 0); RIGHT half (from x = w // 2)
    opaque green (0, 255, 0, 255). Naive RGBA->RGB gives a black left half."""
    a = np.zeros((h, w, 4), dtype=np.uint8)
    a[:, w // 2 :] = (0, 255, 0, 255)
    return _save(Image.fromarray(a, "RGBA"), "PNG")


def png_palette(w: int = 96, h: int = 64, transparent: bool = True) -> bytes:
    """Mode "P" PNG, palette index 0 = black, 1 = red, 2 = blue. Top half is index 0,
    bottom half alternates index 1/2 by column. With ``transparent`` index 0 is the
    transparency index (PNG tRNS), i.e. the top half is transparent."""
    a = np.zeros((h, w), dtype=np.uint8)
    a[h // 2 :, :] = 1 + (np.arange(w) % 2)
    img = Image.fromarray(a, "L").convert("P")  # same indices, greyscale palette
    img.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (3 * 253))
    return _save(img, "PNG", **({"transparency": 0} if transparent else {}))


def png_la(w: int = 96, h: int = 64) -> bytes:
    """Mode "LA" (grayscale + alpha) PNG: luminance is a horizontal 0..255 ramp,
    alpha is a vertical ramp from 0 (top row, transparent) to 255 (bottom row)."""
    lum = np.linspace(0, 255, w).astype(np.uint8)[None, :].repeat(h, 0)
    alpha = np.linspace(0, 255, h).astype(np.uint8)[:, None].repeat(w, 1)
    return _save(Image.fromarray(np.dstack([lum, alpha]), "LA"), "PNG")


def jpeg_grayscale(w: int = 96, h: int = 64) -> bytes:
    """Single-channel (mode "L") JPEG with a horizontal 0..255 ramp."""
    ramp = np.linspace(0, 255, w).astype(np.uint8)[None, :].repeat(h, 0)
    return _save(Image.fromarray(ramp, "L"), "JPEG", quality=95)


def jpeg_cmyk(w: int = 96, h: int = 64) -> bytes:
    """Four-channel CMYK JPEG (Adobe, inverted as Pillow writes it) of one solid
    colour C=0 M=255 Y=255 K=0, i.e. red-ish once converted to RGB."""
    return _save(Image.new("CMYK", (w, h), (0, 255, 255, 0)), "JPEG", quality=95)


def png_16bit_gray(w: int = 256, h: int = 16) -> bytes:
    """Real 16-bit grayscale PNG (Pillow mode "I;16", IHDR bit depth 16, colour type 0).
    Horizontal ramp from 0 (left column) to 65535 (right column): clipping to 0..255
    instead of scaling turns all but the leftmost ~0.4 % white."""
    ramp = np.linspace(0, 65535, w).round().astype(np.uint16)[None, :].repeat(h, 0)
    return _save(Image.fromarray(ramp), "PNG")  # uint16 array -> mode "I;16"


def png_16bit_rgb(w: int = 64, h: int = 32) -> bytes:
    """16-bit-per-channel RGB PNG written by hand (IHDR bit depth 16, colour type 2,
    filter byte 0 per row). R: horizontal ramp 0..65535; G: vertical ramp 0..65535;
    B: constant 0x8000. Pillow opens it as 8-bit "RGB" (keeping the high bytes)."""
    r = np.linspace(0, 65535, w).round()[None, :].repeat(h, 0)
    g = np.linspace(0, 65535, h).round()[:, None].repeat(w, 1)
    b = np.full((h, w), 0x8000)
    px = np.dstack([r, g, b]).astype(">u2")  # big-endian samples
    raw = b"".join(b"\x00" + row.tobytes() for row in px)
    return (
        PNG_SIGNATURE
        + _ihdr(w, h, 16, 2)
        + _png_chunk(b"IDAT", zlib.compress(raw, 9))
        + _png_chunk(b"IEND", b"")
    )


def jpeg_exif_rotated(w: int = 120, h: int = 80, orientation: int = 6) -> bytes:
    """JPEG with EXIF Orientation (0x0112) = ``orientation`` whose stored pixels are
    the inverse transform of an upright w x h image with LEFT half pure red and RIGHT
    half pure blue. ImageOps.exif_transpose gives back that upright image; for
    orientations 5-8 the stored image is h x w."""
    upright = Image.new("RGB", (w, h), BLUE)
    upright.paste(RED, (0, 0, w // 2, h))
    inverse = _INVERSE_OF_EXIF_TRANSPOSE[orientation]
    stored = upright if inverse is None else upright.transpose(inverse)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(stored, "JPEG", quality=95, subsampling=0, exif=exif.tobytes())


def gif_animated(w: int = 48, h: int = 32) -> bytes:
    """Two-frame animated GIF: frame 0 solid red, frame 1 solid blue. A decoder
    must take the FIRST frame (red); getting blue means it read the last frame."""
    frames = [Image.new("RGB", (w, h), c) for c in (RED, BLUE)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def webp(w: int = 96, h: int = 64) -> bytes:
    """Lossless RGB WebP of solid (30, 30, 200)."""
    return _save(Image.new("RGB", (w, h), (30, 30, 200)), "WEBP", lossless=True)


def bmp(w: int = 96, h: int = 64) -> bytes:
    """24-bit RGB BMP of solid (200, 200, 30)."""
    return _save(Image.new("RGB", (w, h), (200, 200, 30)), "BMP")


def tiff(w: int = 96, h: int = 64) -> bytes:
    """Uncompressed RGB TIFF of solid (30, 200, 200)."""
    return _save(Image.new("RGB", (w, h), (30, 200, 200)), "TIFF")


def large_png(w: int = 6000, h: int = 4000) -> bytes:
    """Legitimately large (24 MP by default, below Pillow's bomb limit) mode "L" PNG:
    a horizontal ramp (x % 256). Compresses to well under 1 MB and is quick to make."""
    row = (np.arange(w) % 256).astype(np.uint8)
    return _save(Image.fromarray(np.broadcast_to(row, (h, w)).copy(), "L"), "PNG", compress_level=1)


# ------------------------------------------------------------------------- invalid


def corrupt_jpeg() -> bytes:
    """JPEG (128 x 128 noise) whose header parses (Image.open works) but whose
    entropy-coded data has 256 garbage bytes in the middle, with an SOF0 marker
    (FF C0) planted in them. libjpeg shrugs off plain garbage (warnings only), but the
    stray second SOF is fatal, so Image.open(...).load() raises OSError
    ("broken data stream when reading image file")."""
    data = bytearray(_save(_noise_rgb(128, 128), "JPEG", quality=90))
    sos = data.find(b"\xff\xda")
    scan_start = sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0]
    mid = (scan_start + len(data)) // 2
    garbage = np.random.RandomState(1).randint(0, 0xFF, 256, dtype=np.uint8).tobytes()
    garbage = garbage[:100] + b"\xff\xc0\x00\x11" + garbage[104:]  # 0xFF only here
    data[mid : mid + 256] = garbage
    return bytes(data)


def truncated_jpeg() -> bytes:
    """A valid 128 x 128 noise JPEG cut at 60 % of its length (inside the scan data):
    Image.open works, load() raises OSError "image file is truncated ..." unless
    ImageFile.LOAD_TRUNCATED_IMAGES is set."""
    data = _save(_noise_rgb(128, 128), "JPEG", quality=90)
    return data[: int(len(data) * 0.6)]


def zero_byte() -> bytes:
    """An empty file."""
    return b""


def text_named_jpg() -> bytes:
    """UTF-8 text (not an image) meant to be saved under a ``.jpg`` name."""
    return "This is not a JPEG. Ceci n'est pas une pipe. \u00e9\u00e8 \u2603\n".encode("utf-8")


def html_named_png() -> bytes:
    """An HTML document (e.g. an error page a crawler saved) meant to be saved as ``.png``."""
    return (
        b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head>\n"
        b"<body><h1>Not Found</h1><p>The requested image was not found.</p></body></html>\n"
    )


def bomb_png(w: int = 20000, h: int = 20000) -> bytes:
    """Valid 1-bit grayscale PNG of w x h (default 400 MP, all black) built by
    streaming zero rows (filter byte + ceil(w/8) bytes each) through zlib.compressobj,
    never holding the raw image. About 50 KB on disk for the default size. Image.open
    raises DecompressionBombError for it under Pillow's default MAX_IMAGE_PIXELS; with
    the limit lifted it reports size (w, h). Do not load() it."""
    rows_per_chunk = 256
    block = bytes((1 + (w + 7) // 8) * rows_per_chunk)  # zero filter byte + zero pixels
    comp = zlib.compressobj(9)
    parts = []
    full, rest = divmod(h, rows_per_chunk)
    for _ in range(full):
        parts.append(comp.compress(block))
    parts.append(comp.compress(block[: len(block) // rows_per_chunk * rest]))
    parts.append(comp.flush())
    return (
        PNG_SIGNATURE
        + _ihdr(w, h, 1, 0)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )
