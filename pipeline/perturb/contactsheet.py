"""Contact sheets for `artlens perturb --save-examples N`: one PNG per painting, so people can see what each
severity looks like. A row per deformation; columns: the clean (working-size) image, then severities 1..5.
Each image is scaled to fit a CELL × CELL box, centred; the sheet is sheet_size(deformations) pixels."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Iterator

from PIL import Image, ImageDraw, ImageFont

from artlens.pipeline.perturb.deformations import deform
from artlens.pipeline.perturb.suite import SEVERITIES, Suite
from artlens.pipeline.extract.loader import decoded
from artlens.pipeline.perturb.loader import working_image
from artlens.pipeline.shards.spec import expand_shards

CELL, PAD, LABEL_W, HEADER_H = 160, 6, 112, 24
COLUMNS = ("clean",) + tuple(f"severity {s}" for s in SEVERITIES)


def sheet_size(deformations: int) -> tuple[int, int]:
    """(width, height) of a sheet with this many deformation rows."""
    return LABEL_W + len(COLUMNS) * (CELL + PAD) + PAD, HEADER_H + deformations * (CELL + PAD) + PAD


def sheet_name(key: str) -> str:
    """A file name for a key: readable, file-safe, and unique (keys may hold '/' or other characters)."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", key)[:80] or "key"
    return f"{stem}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]}.png"


def _paste(canvas: Image.Image, image: Image.Image, x: int, y: int) -> None:
    thumb = image.copy()
    thumb.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
    canvas.paste(thumb, (x + (CELL - thumb.width) // 2, y + (CELL - thumb.height) // 2))


def contact_sheet(image: Image.Image, key: str, suite: Suite) -> Image.Image:
    """The sheet of one decoded painting under every deformation and severity of the suite."""
    work = working_image(image, suite)
    canvas = Image.new("RGB", sheet_size(len(suite.deformations)), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    for c, title in enumerate(COLUMNS):
        draw.text((LABEL_W + PAD + c * (CELL + PAD), 6), title, fill="black", font=font)
    for r, spec in enumerate(suite.deformations):
        y = HEADER_H + r * (CELL + PAD)
        draw.text((PAD, y + CELL // 2 - 6), spec.name, fill="black", font=font)
        cells = [work] + [deform(work, spec.name, spec.level(s), key, dict(spec.options)) for s in SEVERITIES]
        for c, cell in enumerate(cells):
            _paste(canvas, cell, LABEL_W + PAD + c * (CELL + PAD), y)
    return canvas


def _first_images(shards: str, keys: frozenset[str], n: int, max_pixels: int) -> Iterator[tuple[str, Image.Image]]:
    """The first n decodable samples (in shard order) that are rows of the clean table."""
    found = 0
    for url in expand_shards(shards):
        try:
            for row, image in decoded(url, max_pixels, []):
                if row["key"] in keys:
                    yield row["key"], image
                    found += 1
                    if found == n:
                        return
        except OSError:  # an unreadable shard: the run itself records it as a failure
            continue


def write_examples(shards: str, keys: frozenset[str], suite: Suite, n: int, out_dir: Path,
                   max_pixels: int) -> list[Path]:
    """Contact sheets of the first n paintings of the shards that the clean table holds; their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key, image in _first_images(shards, keys, n, max_pixels):
        path = out_dir / sheet_name(key)
        tmp = path.with_name(f".tmp-{path.name}")
        contact_sheet(image, key, suite).save(tmp, "PNG")
        os.replace(tmp, path)
        written.append(path)
    return written
