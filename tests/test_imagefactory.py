"""Each tests/imagefactory.py function keeps the promise made in its docstring."""

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

try:
    import imagefactory as f
except ImportError:  # tests/ turned into a package
    from tests import imagefactory as f


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def _png_chunks(data: bytes):
    """(type, payload) for every chunk, asserting each CRC is right."""
    assert data[:8] == f.PNG_SIGNATURE
    pos, out = 8, []
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF, kind
        out.append((kind, payload))
        pos += 12 + n
    assert out[0][0] == b"IHDR" and out[-1] == (b"IEND", b"")
    return out


def _ihdr(data: bytes):
    """(width, height, bit depth, colour type) from a PNG's IHDR."""
    return struct.unpack(">IIBB", _png_chunks(data)[0][1][:10])


@pytest.mark.parametrize(
    "make, fmt, mode, size",
    [
        (f.jpeg, "JPEG", "RGB", (96, 64)),
        (lambda: f.jpeg(33, 17, (1, 2, 3)), "JPEG", "RGB", (33, 17)),
        (f.png, "PNG", "RGB", (96, 64)),
        (f.png_rgba, "PNG", "RGBA", (96, 64)),
        (f.png_palette, "PNG", "P", (96, 64)),
        (f.png_la, "PNG", "LA", (96, 64)),
        (f.jpeg_grayscale, "JPEG", "L", (96, 64)),
        (f.jpeg_cmyk, "JPEG", "CMYK", (96, 64)),
        (f.png_16bit_gray, "PNG", "I;16", (256, 16)),
        (f.png_16bit_rgb, "PNG", "RGB", (64, 32)),
        (f.gif_animated, "GIF", "P", (48, 32)),
        (f.webp, "WEBP", "RGB", (96, 64)),
        (f.bmp, "BMP", "RGB", (96, 64)),
        (f.tiff, "TIFF", "RGB", (96, 64)),
        (lambda: f.large_png(3000, 2000), "PNG", "L", (3000, 2000)),
    ],
)
def test_valid_images_open_and_load(make, fmt, mode, size):
    data = make()
    assert isinstance(data, bytes)
    im = _open(data)
    assert (im.format, im.mode, im.size) == (fmt, mode, size)
    im.load()
    assert im.convert("RGB").size == size


@pytest.mark.parametrize(
    "make",
    [f.jpeg, f.png, f.png_rgba, f.png_palette, f.png_la, f.jpeg_grayscale, f.jpeg_cmyk,
     f.png_16bit_gray, f.png_16bit_rgb, f.jpeg_exif_rotated, f.gif_animated, f.webp,
     f.bmp, f.tiff, f.corrupt_jpeg, f.truncated_jpeg, f.text_named_jpg, f.html_named_png],
)
def test_deterministic(make):
    assert make() == make()


def test_solid_colours():
    assert _open(f.png(10, 10, (1, 2, 3))).getpixel((5, 5)) == (1, 2, 3)
    assert _open(f.webp()).getpixel((0, 0)) == (30, 30, 200)  # lossless
    assert _open(f.bmp()).getpixel((0, 0)) == (200, 200, 30)
    assert _open(f.tiff()).getpixel((0, 0)) == (30, 200, 200)
    r, g, b = _open(f.jpeg()).convert("RGB").getpixel((48, 32))
    assert abs(r - 200) < 6 and abs(g - 30) < 6 and abs(b - 30) < 6


def test_png_rgba_left_transparent_right_opaque_green():
    a = np.asarray(_open(f.png_rgba(96, 64)))
    assert (a[:, :48] == 0).all()
    assert (a[:, 48:] == (0, 255, 0, 255)).all()


def test_png_palette_transparency_index():
    im = _open(f.png_palette(96, 64))
    assert im.mode == "P" and im.info["transparency"] == 0
    rgba = np.asarray(im.convert("RGBA"))
    assert (rgba[:32, :, 3] == 0).all()
    assert (rgba[32:, 0] == (255, 0, 0, 255)).all() and (rgba[32:, 1] == (0, 0, 255, 255)).all()
    opaque = _open(f.png_palette(96, 64, transparent=False))
    assert opaque.mode == "P" and "transparency" not in opaque.info


def test_png_la_alpha_ramp():
    a = np.asarray(_open(f.png_la(96, 64)))
    assert a.shape == (64, 96, 2)
    assert (a[0, :, 1] == 0).all() and (a[-1, :, 1] == 255).all()
    assert a[0, 0, 0] == 0 and a[0, -1, 0] == 255


def test_jpeg_cmyk_is_four_channel():
    im = _open(f.jpeg_cmyk())
    assert im.mode == "CMYK" and len(im.getbands()) == 4
    r, g, b = im.convert("RGB").getpixel((10, 10))
    assert r > 200 and g < 60 and b < 60


def test_png_16bit_gray_is_really_16bit():
    data = f.png_16bit_gray(256, 16)
    assert _ihdr(data) == (256, 16, 16, 0)
    im = _open(data)
    assert im.mode == "I;16"
    a = np.asarray(im)
    assert a.dtype.itemsize == 2 and a.min() == 0 and a.max() == 65535
    assert (a > 255).mean() > 0.9  # clipping to 8 bits would make this white


def test_png_16bit_rgb_hand_written():
    data = f.png_16bit_rgb(64, 32)
    assert _ihdr(data) == (64, 32, 16, 2)  # CRCs checked by _png_chunks
    a = np.asarray(_open(data).convert("RGB")).astype(int)
    assert a[:, 0, 0].max() == 0 and a[:, -1, 0].min() == 255  # R: horizontal ramp
    assert a[0, :, 1].max() == 0 and a[-1, :, 1].min() == 255  # G: vertical ramp
    assert (a[..., 2] == 128).all()  # B: 0x8000 -> high byte 0x80


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_exif_rotated_upright_after_transpose(orientation):
    im = _open(f.jpeg_exif_rotated(120, 80, orientation))
    assert im.getexif()[0x0112] == orientation
    assert im.size == ((80, 120) if orientation >= 5 else (120, 80))
    up = ImageOps.exif_transpose(im)
    assert up.size == (120, 80)
    a = np.asarray(up.convert("RGB")).astype(float)
    left, right = a[:, :60].mean(axis=(0, 1)), a[:, 60:].mean(axis=(0, 1))
    assert np.abs(left - (255, 0, 0)).max() < 12, left
    assert np.abs(right - (0, 0, 255)).max() < 12, right


@pytest.mark.parametrize("orientation", [6, 8])
def test_jpeg_exif_rotated_stored_differs_without_transpose(orientation):
    im = _open(f.jpeg_exif_rotated(120, 80, orientation))
    assert im.size == (80, 120) != (120, 80)
    a = np.asarray(im.convert("RGB")).astype(float)
    # stored halves are top/bottom, not left/right: the left half is half red, half blue
    left = a[:, :40].mean(axis=(0, 1))
    assert 100 < left[0] < 155 and 100 < left[2] < 155


def test_gif_animated_first_frame_red_second_blue():
    im = _open(f.gif_animated(48, 32))
    assert im.is_animated and im.n_frames == 2
    assert im.convert("RGB").getpixel((5, 5)) == (255, 0, 0)
    im.seek(1)
    assert im.convert("RGB").getpixel((5, 5)) == (0, 0, 255)


def test_large_png_default_is_large_and_small_on_disk():
    data = f.large_png()
    assert len(data) < 1_000_000
    im = _open(data)
    assert im.size == (6000, 4000) and im.mode == "L"
    assert im.width * im.height < Image.MAX_IMAGE_PIXELS


def test_corrupt_jpeg_opens_but_does_not_load():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    im = _open(f.corrupt_jpeg())
    assert im.format == "JPEG" and im.size == (128, 128)
    with pytest.raises(OSError):
        im.load()


def test_truncated_jpeg(monkeypatch):
    im = _open(f.truncated_jpeg())
    assert im.format == "JPEG" and im.size == (128, 128)
    with pytest.raises(OSError, match="image file is truncated"):
        im.load()
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    _open(f.truncated_jpeg()).load()  # tolerated only when explicitly allowed


@pytest.mark.parametrize("make", [f.zero_byte, f.text_named_jpg, f.html_named_png])
def test_not_images(make):
    with pytest.raises(UnidentifiedImageError):
        _open(make())


def test_zero_text_html_contents():
    assert f.zero_byte() == b""
    f.text_named_jpg().decode("utf-8")
    assert f.html_named_png().lstrip().lower().startswith(b"<!doctype html")


def test_bomb_png_header_only(monkeypatch):
    t0 = time.perf_counter()
    data = f.bomb_png()
    assert time.perf_counter() - t0 < 2.0
    assert len(data) < 1_000_000
    assert _ihdr(data) == (20000, 20000, 1, 0)
    with pytest.raises(Image.DecompressionBombError):
        _open(data)  # Pillow's default MAX_IMAGE_PIXELS refuses it at open
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    im = _open(data)  # header only; never load()
    assert im.size == (20000, 20000) and im.mode == "1"


def test_bomb_png_small_is_valid_and_decodes():
    data = f.bomb_png(37, 1000)  # odd width, rows not a multiple of the chunk size
    im = _open(data)
    assert im.size == (37, 1000)
    assert np.asarray(im.convert("L")).max() == 0
