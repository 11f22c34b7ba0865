"""Procedurally drawn fake "paintings": artlens's own demo corpus (no committed images).

A painting is palette x subject x style, each picked by name from a registry: ``PALETTES``
(six RGB colours used by role: light, light-mid, mid, dark, accent, accent2), ``SUBJECTS``
(draw a flat *layout* of a few palette-coloured shapes with ImageDraw) and ``STYLES``
(re-render that layout as dots, edge-following strokes, hard-edged blocks or soft bands).
Subject and style vary independently and both stay visible in the pixels. All randomness
comes from ``numpy.random.default_rng``: the same arguments give the same pixels. Only numpy
and Pillow are used; a 384x320 painting takes tens of milliseconds on one core.
"""

from __future__ import annotations

import itertools
from typing import Callable, Iterator

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from artlens.errors import UserError

RGB = tuple[int, int, int]
PAPER = (244, 238, 224)
INK = (32, 30, 34)

PALETTES: dict[str, list[RGB]] = {
    "warm": [(250, 226, 172), (238, 168, 92), (204, 92, 52), (104, 40, 32), (226, 58, 54), (250, 200, 48)],
    "cool": [(212, 230, 246), (122, 170, 212), (58, 108, 160), (26, 40, 82), (72, 160, 132), (172, 144, 212)],
    "earth": [(226, 212, 176), (184, 150, 98), (122, 112, 62), (70, 50, 36), (164, 82, 42), (94, 124, 72)],
    "pastel": [(250, 236, 240), (198, 226, 210), (244, 188, 200), (146, 136, 182), (250, 214, 158), (168, 204, 236)],
    "vivid": [(255, 242, 204), (255, 124, 10), (0, 150, 84), (22, 24, 120), (228, 0, 96), (0, 182, 222)],
}


class UnknownName(UserError, KeyError):
    """A style, subject or palette that is not in its registry (also a KeyError); the message lists them."""

    def __str__(self) -> str:
        return self.args[0]


def _lookup(registry: dict, name: str, what: str):
    """registry[name], or an UnknownName that lists the valid names."""
    try:
        return registry[name]
    except KeyError:
        raise UnknownName(f"unknown {what} {name!r}; valid {what}s: {', '.join(sorted(registry))}") from None


def _blend(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))


def _box(cx: float, cy: float, rx: float, ry: float) -> list[float]:
    return [cx - rx, cy - ry, cx + rx, cy + ry]


# --- subjects: draw(d, w, h, palette, rng) paints a flat layout -------------------------------
def _landscape(d: ImageDraw.ImageDraw, w: int, h: int, p: list[RGB], rng) -> None:
    horizon = h * rng.uniform(0.38, 0.55)
    d.rectangle([0, 0, w, h], fill=p[0])
    d.rectangle([0, horizon - h * 0.12, w, horizon], fill=_blend(p[0], p[5], 0.35))
    r = w * rng.uniform(0.05, 0.08)
    d.ellipse(_box(w * rng.uniform(0.15, 0.85), h * rng.uniform(0.1, 0.25), r, r), fill=p[5])
    xs = np.linspace(0, w, 32)
    for k, col in enumerate((p[1], p[2], p[3])):
        phase, freq = rng.uniform(0, 2 * np.pi), rng.uniform(2.0, 6.0)
        ys = horizon + k * h * 0.14 - h * 0.09 * (np.sin(xs / w * freq + phase) + 1) / (k + 1)
        d.polygon(list(zip(xs, ys)) + [(w, h), (0, h)], fill=col)
    for _ in range(int(rng.integers(2, 5))):
        x, y = w * rng.uniform(0.05, 0.95), horizon + h * rng.uniform(0.22, 0.4)
        d.line([(x, y), (x, y - h * 0.1)], fill=INK, width=max(2, w // 80))
        d.ellipse(_box(x, y - h * 0.13, w * 0.035, h * 0.06), fill=p[4])


def _portrait(d: ImageDraw.ImageDraw, w: int, h: int, p: list[RGB], rng) -> None:
    d.rectangle([0, 0, w, h], fill=p[1])
    hr = min(w, h) * rng.uniform(0.16, 0.2)
    cx, cy = w * rng.uniform(0.42, 0.58), h * 0.4
    skin = _blend(p[0], p[4], 0.3)
    d.ellipse(_box(cx, cy + 3.4 * hr, 2.5 * hr, 1.9 * hr), fill=p[rng.choice([2, 5])])
    d.rectangle(_box(cx, cy + 1.2 * hr, 0.35 * hr, 0.6 * hr), fill=_blend(skin, p[3], 0.2))
    d.ellipse(_box(cx, cy - 0.3 * hr, 1.05 * hr, 0.95 * hr), fill=p[3])
    d.ellipse(_box(cx, cy, 0.82 * hr, hr), fill=skin)
    d.chord(_box(cx, cy - 0.6 * hr, 0.92 * hr, 0.65 * hr), 180, 360, fill=p[3])
    for ex in (-0.33, 0.33):
        d.ellipse(_box(cx + ex * hr, cy + 0.05 * hr, 0.12 * hr, 0.07 * hr), fill=INK)
    d.line([(cx - 0.25 * hr, cy + 0.55 * hr), (cx + 0.25 * hr, cy + 0.55 * hr)], fill=p[4], width=max(2, int(hr / 12)))


def _still_life(d: ImageDraw.ImageDraw, w: int, h: int, p: list[RGB], rng) -> None:
    ty = h * rng.uniform(0.55, 0.66)
    d.rectangle([0, 0, w, ty], fill=p[0])
    d.rectangle([0, ty, w, h], fill=p[1])
    d.rectangle([0, ty + (h - ty) * 0.6, w, h], fill=_blend(p[1], p[3], 0.45))
    vx, vr = w * rng.choice([0.25, 0.75]) + w * rng.uniform(-0.05, 0.05), w * rng.uniform(0.08, 0.11)
    d.rectangle(_box(vx, ty - 2.4 * vr, 0.35 * vr, 0.8 * vr), fill=p[3])
    d.ellipse(_box(vx, ty - 0.9 * vr, vr, 1.1 * vr), fill=p[2])
    n = int(rng.integers(3, 6))
    fx0, fr = (w * 0.55 if vx < w / 2 else w * 0.15), w * rng.uniform(0.04, 0.055)
    for i in range(n):
        x = fx0 + i * fr * 1.6 + rng.uniform(-3, 3)
        d.ellipse(_box(x, ty + fr * rng.uniform(0.1, 0.6), fr, fr), fill=p[4 + i % 2])
    d.chord(_box(fx0 + (n - 1) * fr * 0.8, ty + fr * 0.6, n * fr * 0.95, fr * 1.2), 0, 180, fill=p[3])


def _seascape(d: ImageDraw.ImageDraw, w: int, h: int, p: list[RGB], rng) -> None:
    hz = h * rng.uniform(0.38, 0.5)
    d.rectangle([0, 0, w, hz], fill=p[0])
    r = w * rng.uniform(0.05, 0.08)
    d.ellipse(_box(w * rng.uniform(0.1, 0.9), hz - r * rng.uniform(0.3, 2.5), r, r), fill=p[5])
    d.rectangle([0, hz, w, h], fill=p[2])
    d.rectangle([0, hz + (h - hz) * 0.55, w, h], fill=_blend(p[2], p[3], 0.5))
    for _ in range(int(rng.integers(30, 45))):
        y = hz + (h - hz) * rng.uniform(0.05, 1.0)
        s = 4 + 26 * (y - hz) / (h - hz)
        d.arc(_box(w * rng.uniform(0, 1), y, s, s / 2), 200, 340, fill=p[1], width=max(2, int(s / 8)))
    bx, by, L = w * rng.uniform(0.25, 0.75), hz + (h - hz) * rng.uniform(0.2, 0.4), w * 0.18
    hull = [(bx - L / 2, by), (bx + L / 2, by), (bx + L * 0.35, by + L * 0.22), (bx - L * 0.35, by + L * 0.22)]
    d.polygon(hull, fill=p[3])
    d.line([(bx, by), (bx, by - L)], fill=INK, width=max(2, w // 120))
    d.polygon([(bx + 3, by - L), (bx + 3, by - 4), (bx + L * 0.45, by - 4)], fill=p[4])
    d.polygon([(bx - 3, by - L * 0.8), (bx - 3, by - 4), (bx - L * 0.3, by - 4)], fill=_blend(p[0], (255, 255, 255), 0.5))


def _interior(d: ImageDraw.ImageDraw, w: int, h: int, p: list[RGB], rng) -> None:
    fy = h * rng.uniform(0.62, 0.72)
    d.rectangle([0, 0, w, h], fill=p[1])
    d.rectangle([0, fy, w, h], fill=_blend(p[2], p[3], 0.5))
    for x in np.linspace(-w, 2 * w, 13):
        d.line([(w / 2 + (x - w / 2) * 0.35, fy), (x, h)], fill=p[3], width=2)
    wx, ww, wh = w * rng.uniform(0.08, 0.45), w * 0.28, h * 0.34
    d.rectangle([wx, h * 0.12, wx + ww, h * 0.12 + wh], fill=p[0], outline=p[3], width=max(3, w // 80))
    d.line([(wx + ww / 2, h * 0.12), (wx + ww / 2, h * 0.12 + wh)], fill=p[3], width=max(3, w // 100))
    d.line([(wx, h * 0.12 + wh / 2), (wx + ww, h * 0.12 + wh / 2)], fill=p[3], width=max(3, w // 100))
    dx = wx + ww + w * 0.1 if wx < w * 0.35 else w * 0.08
    d.rectangle([dx, h * 0.2, dx + w * 0.17, fy], fill=p[2], outline=p[3], width=2)
    d.ellipse(_box(w * rng.uniform(0.35, 0.65), fy + (h - fy) * 0.55, w * 0.25, (h - fy) * 0.25), fill=p[5])
    tx, tw = w * rng.uniform(0.3, 0.6), w * 0.22
    d.rectangle([tx, fy - h * 0.13, tx + tw, fy - h * 0.1], fill=p[4])
    for lx in (tx + 4, tx + tw - 4):
        d.line([(lx, fy - h * 0.1), (lx, fy + h * 0.04)], fill=p[3], width=max(2, w // 120))


SUBJECTS: dict[str, Callable] = {"landscape": _landscape, "portrait": _portrait, "still-life": _still_life,
                                  "seascape": _seascape, "interior": _interior}


# --- styles: render(layout, palette, rng) -> painted image ------------------------------------
def _disc(r: float) -> np.ndarray:
    """(dy, dx) offsets of a disc of radius r <= 3."""
    off = np.mgrid[-3:4, -3:4].reshape(2, -1).T
    return off[(off ** 2).sum(axis=1) <= r * r]


def _stamp(canvas: np.ndarray, ys, xs, cols, offsets: np.ndarray) -> None:
    """Paint disc-shaped marks of colour cols at (ys, xs), vectorised over marks."""
    h, w, _ = canvas.shape
    ys, xs = np.rint(ys).astype(int), np.rint(xs).astype(int)
    for dy, dx in offsets:
        canvas[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)] = cols


def _pointillist(layout: Image.Image, p: list[RGB], rng) -> Image.Image:
    a = np.asarray(layout)
    h, w, _ = a.shape
    r = rng.uniform(1.8, 2.9)
    n = int(2.6 * w * h / len(_disc(r)))
    ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
    cols = a[ys, xs] + rng.normal(0, 24, (n, 3))
    swap = rng.random(n) < 0.07
    cols[swap] = np.asarray(p, float)[rng.integers(0, len(p), swap.sum())]
    canvas = np.broadcast_to(np.array(PAPER, np.uint8), a.shape).copy()
    _stamp(canvas, ys, xs, np.clip(cols, 0, 255).astype(np.uint8), _disc(r))
    return Image.fromarray(canvas)


def _impasto(layout: Image.Image, p: list[RGB], rng) -> Image.Image:
    a = np.asarray(layout.filter(ImageFilter.GaussianBlur(3)), dtype=float)
    h, w, _ = a.shape
    gy, gx = np.gradient(a.mean(axis=2))
    n, length = w * h // 40, int(rng.integers(9, 15))
    ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
    swirl = rng.uniform(-np.pi, np.pi) + 0.9 * np.sin(xs / w * rng.uniform(3, 8) + ys / h * rng.uniform(2, 6))
    edge = np.hypot(gx, gy)[ys, xs] > 1.5
    ang = np.where(edge, np.arctan2(gy[ys, xs], gx[ys, xs]) + np.pi / 2, swirl) + rng.normal(0, 0.2, n)
    cols = a[ys, xs] + rng.normal(0, 16, (n, 1)) + rng.normal(0, 6, (n, 3))
    lit, shade = np.clip(cols, 0, 255).astype(np.uint8), np.clip(cols * 0.8, 0, 255).astype(np.uint8)
    canvas, nib = a.astype(np.uint8), _disc(rng.uniform(1.2, 1.9))
    for t in np.linspace(-length / 2, length / 2, length):
        sy, sx = ys + t * np.sin(ang), xs + t * np.cos(ang)
        _stamp(canvas, sy + 1, sx + 1, shade, nib)
        _stamp(canvas, sy, sx, lit, nib)
    return Image.fromarray(canvas)


def _cuts(n: int, rng) -> np.ndarray:
    pos = np.cumsum(rng.integers(8, 28, n // 8 + 1))
    return np.r_[0, pos[pos < n - 4]]


def _geometric(layout: Image.Image, p: list[RGB], rng) -> Image.Image:
    a = np.asarray(layout)
    h, w, _ = a.shape
    yc, xc = _cuts(h, rng), _cuts(w, rng)
    hs, ws = np.diff(np.r_[yc, h]), np.diff(np.r_[xc, w])
    blocks = a[yc + hs // 2][:, xc + ws // 2]  # each block takes the layout colour at its centre
    odd = rng.random(blocks.shape[:2]) < 0.025
    blocks[odd] = np.asarray(p, np.uint8)[rng.integers(0, len(p), odd.sum())]
    img = np.repeat(np.repeat(blocks, hs, axis=0), ws, axis=1)
    edge = np.zeros((h + 1, w + 1), bool)  # colour changes, then thickened to 2 px
    edge[:h, 1:w] = (img[:, 1:] != img[:, :-1]).any(-1)
    edge[1:h, :w] |= (img[1:] != img[:-1]).any(-1)
    img[edge[:h, :w] | edge[:h, 1:] | edge[1:, :w]] = INK
    for c in rng.choice(xc[1:], min(2, len(xc) - 1), replace=False):
        img[:, c - 1:c + 2] = INK
    return Image.fromarray(img)


def _wash(layout: Image.Image, p: list[RGB], rng) -> Image.Image:
    w, h = layout.size
    a = np.asarray(layout.filter(ImageFilter.GaussianBlur(max(w, h) / 48)), dtype=float)
    bounds = np.sort(rng.uniform(0.12, 0.88, int(rng.integers(2, 5)))) * h
    _, band = np.unique(np.searchsorted(bounds, np.arange(h)), return_inverse=True)
    band_cols = np.stack([a[band == b].mean(axis=(0, 1)) for b in range(band.max() + 1)])
    mix = 0.65 * a + 0.35 * band_cols[band][:, None, :]
    m = max(1, int(min(w, h) * rng.uniform(0.04, 0.08)))
    mix[:m] = mix[-m:] = mix[:, :m] = mix[:, -m:] = _blend(p[0], p[3], 0.25)  # a plain margin around the field
    grain = rng.normal(0, 1, (h // 24 + 2, w // 24 + 2)).astype(np.float32)
    grain = np.asarray(Image.fromarray(grain).resize((w, h), Image.BILINEAR))
    mix = np.clip(mix * (1 + 0.05 * grain[..., None]), 0, 255).astype(np.uint8)
    return Image.fromarray(mix).filter(ImageFilter.GaussianBlur(4))


STYLES: dict[str, Callable] = {"pointillist": _pointillist, "impasto": _impasto, "geometric": _geometric, "wash": _wash}


# --- public API --------------------------------------------------------------------------------
def render_painting(style: str, subject: str, palette: str, seed: int,
                    size: tuple[int, int] = (384, 320)) -> Image.Image:
    """One RGB painting of `size` (width, height); the same arguments give the same pixels."""
    render, draw = _lookup(STYLES, style, "style"), _lookup(SUBJECTS, subject, "subject")
    pal = list(_lookup(PALETTES, palette, "palette"))
    layout = Image.new("RGB", size, PAPER)
    draw(ImageDraw.Draw(layout), *size, pal, np.random.default_rng([seed, 1]))  # layout independent of style
    return render(layout, pal, np.random.default_rng([seed, 2])).convert("RGB")


def _vary_size(size: tuple[int, int], rng) -> tuple[int, int]:
    w, h = size[::-1] if rng.random() < 0.3 else size
    s = rng.uniform(0.85, 1.15)
    return max(16, int(round(w * s / 16)) * 16), max(16, int(round(h * s / 16)) * 16)


def iter_paintings(n: int, seed: int = 0,
                   size: tuple[int, int] = (384, 320)) -> Iterator[tuple[str, Image.Image, dict]]:
    """Yield (name, image, labels) for n paintings, cycling all style x subject x palette combinations
    in a shuffled order fixed by `seed`; sizes vary a little around `size`."""
    combos = list(itertools.product(STYLES, SUBJECTS, PALETTES))
    rng = np.random.default_rng(seed)
    for i in range(n):
        if i % len(combos) == 0:
            order = rng.permutation(len(combos))
        style, subject, palette = combos[order[i % len(combos)]]
        pseed, wh = int(rng.integers(0, 2**31 - 1)), _vary_size(size, rng)
        labels = {"style": style, "subject": subject, "palette": palette, "seed": pseed}
        yield f"sample-{i:05d}", render_painting(style, subject, palette, pseed, wh), labels
