"""Decoding awkward-but-valid images the way people see them, and refusing invalid ones with a reason."""
import numpy as np
import pytest

import imagefactory as f
from artlens.pipeline.imaging.decode import ImageRejected, decode_image


def mean_rgb(img, box=None):
    arr = np.asarray(img.crop(box) if box else img, dtype=np.float64)
    return arr.reshape(-1, 3).mean(axis=0)


def test_rgba_transparent_region_becomes_white():
    img = decode_image(f.png_rgba(96, 64))
    assert img.mode == "RGB"
    assert mean_rgb(img, (0, 0, 40, 64)) == pytest.approx([255, 255, 255], abs=1)   # transparent half
    assert mean_rgb(img, (60, 0, 96, 64)) == pytest.approx([0, 255, 0], abs=1)      # opaque green half


def test_palette_transparency_composited_on_white():
    img = decode_image(f.png_palette(96, 64, transparent=True))
    assert mean_rgb(img, (0, 0, 96, 30)) == pytest.approx([255, 255, 255], abs=1)   # index 0 transparent
    opaque = decode_image(f.png_palette(96, 64, transparent=False))
    assert mean_rgb(opaque, (0, 0, 96, 30)) == pytest.approx([0, 0, 0], abs=1)


def test_gray_alpha_and_grayscale_become_rgb():
    assert decode_image(f.png_la(96, 64)).mode == "RGB"
    gray = decode_image(f.jpeg_grayscale(96, 64))
    arr = np.asarray(gray, dtype=int)
    assert np.abs(arr[..., 0] - arr[..., 1]).max() <= 1  # neutral grey
    assert arr[:, -1].mean() > arr[:, 0].mean() + 100     # ramp preserved


def test_cmyk_jpeg_is_red_not_inverted():
    r, g, b = mean_rgb(decode_image(f.jpeg_cmyk(96, 64)))
    assert r > 200 and g < 60 and b < 60


def test_16bit_gray_is_scaled_not_clipped():
    img = decode_image(f.png_16bit_gray(256, 16))
    row = np.asarray(img)[8, :, 0].astype(int)
    assert row[0] < 5 and row[-1] > 250
    assert 100 < row[128] < 156  # mid-gradient stays mid-grey (clipping would make it 255)


def test_16bit_rgb_png_decodes():
    img = decode_image(f.png_16bit_rgb(64, 32))
    arr = np.asarray(img, dtype=int)
    assert arr[:, -1, 0].mean() > 240 and arr[:, 0, 0].mean() < 15


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_rotated_jpeg_is_upright(orientation):
    img = decode_image(f.jpeg_exif_rotated(120, 80, orientation=orientation))
    assert img.size == (120, 80)
    assert mean_rgb(img, (0, 0, 50, 80)) == pytest.approx([255, 0, 0], abs=25)
    assert mean_rgb(img, (70, 0, 120, 80)) == pytest.approx([0, 0, 255], abs=25)


def test_animated_gif_takes_first_frame():
    assert mean_rgb(decode_image(f.gif_animated(48, 32))) == pytest.approx([255, 0, 0], abs=2)


@pytest.mark.parametrize("make", [f.webp, f.bmp, f.tiff, f.png, f.jpeg])
def test_other_formats(make):
    img = decode_image(make(96, 64))
    assert img.mode == "RGB" and img.size == (96, 64)


def test_large_legitimate_image_under_limit():
    img = decode_image(f.large_png(6000, 4000), max_pixels=30_000_000)
    assert img.size == (6000, 4000)


@pytest.mark.parametrize("data, reason", [
    (f.corrupt_jpeg(), "cannot decode JPEG"),
    (f.truncated_jpeg(), "truncated"),
    (f.zero_byte(), "empty file"),
    (f.text_named_jpg(), "not an image"),
    (f.html_named_png(), "not an image"),
])
def test_invalid_input_is_rejected_with_reason(data, reason):
    with pytest.raises(ImageRejected, match=reason):
        decode_image(data)


def test_decompression_bomb_rejected_from_header():
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageRejected, match="decompression bomb guard"):
        decode_image(f.bomb_png(20000, 20000))
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 100_000  # decoding 400 Mpx would need >= 50 MB even at 1 bit per pixel


def test_pixel_limit_is_configurable():
    with pytest.raises(ImageRejected, match="exceeds max_pixels 1,000"):
        decode_image(f.jpeg(96, 64), max_pixels=1000)
