"""Contact sheets of a neighbour search (`artlens neighbors --sheet FILE.png`): the query, when it is a row or an
image, then its neighbours best first, each a tile labelled with its key and score. Images come from the store
(Store.image: thumbnails are cached there); a row whose image is unavailable (a table without images, a moved
shard) is a grey card with its key, so the sheet always shows every hit."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from artlens.store.images import ImageNotFound, ImageUnavailable

CELL, PAD, LABEL_H, MAX_COLUMNS = 160, 8, 30, 5
BACKGROUND, CARD, INK = (255, 255, 255), (200, 200, 200), (20, 20, 20)
#: Characters of a key shown on its tile (a longer one is cut, with an ellipsis).
KEY_CHARS = 24


@dataclass
class Tile:
    key: str
    label: str                        # the line under the key (score, or "query")
    image: Image.Image | None = None  # None: a grey card


def grid(n: int) -> tuple[int, int]:
    """(columns, rows) of a sheet of n tiles."""
    columns = max(1, min(MAX_COLUMNS, n))
    return columns, max(1, math.ceil(n / columns))


def sheet_size(n: int) -> tuple[int, int]:
    columns, rows = grid(n)
    return PAD + columns * (CELL + PAD), PAD + rows * (CELL + LABEL_H + PAD)


def short(key: str, limit: int = KEY_CHARS) -> str:
    text = key.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= limit else text[:limit - 1] + "…"


def draw_sheet(tiles: list[Tile], path: str | Path) -> Path:
    """Write the tiles as one PNG (row-major, MAX_COLUMNS wide); returns its path."""
    canvas = Image.new("RGB", sheet_size(len(tiles)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    columns, _ = grid(len(tiles))
    for i, tile in enumerate(tiles):
        x = PAD + (i % columns) * (CELL + PAD)
        y = PAD + (i // columns) * (CELL + LABEL_H + PAD)
        if tile.image is None:
            draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=CARD)
            draw.text((x + 6, y + CELL // 2 - 6), "no image", fill=INK, font=font)
        else:
            thumb = tile.image.convert("RGB")
            thumb.thumbnail((CELL, CELL), Image.Resampling.LANCZOS)
            canvas.paste(thumb, (x + (CELL - thumb.width) // 2, y + (CELL - thumb.height) // 2))
        draw.text((x, y + CELL + 2), short(tile.key), fill=INK, font=font)
        draw.text((x, y + CELL + 15), tile.label, fill=INK, font=font)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path, "PNG")
    return path


def _image(store, table: str, key: str) -> Image.Image | None:
    try:
        return store.image(table, key, size=CELL)
    except (ImageNotFound, ImageUnavailable):
        return None


def neighbor_sheet(store, table: str, hits, path: str | Path, query_key: str | None = None,
                   query_image: str | Path | None = None) -> Path:
    """The sheet of a search's `hits` (a table with `key` and `score`, best first), the query first when it is a
    row (`query_key`) or an image file (`query_image`)."""
    tiles = []
    if query_key is not None:
        tiles.append(Tile(query_key, "query", _image(store, table, query_key)))
    elif query_image is not None:
        try:
            with Image.open(query_image) as img:
                picture = img.convert("RGB")
        except OSError:
            picture = None
        tiles.append(Tile(Path(query_image).name, "query image", picture))
    for key, score in zip(hits.column("key").to_pylist(), hits.column("score").to_pylist()):
        tiles.append(Tile(key, f"score {score:.3f}", _image(store, table, key)))
    return draw_sheet(tiles, path)
