"""The public API's functions that join two layers: nearest neighbours of words or an image need the table's
own model (artlens.pipeline) as well as the store, and a deformation table's contact sheets its suite.
Everything else of the API lives in its layer and is named in `artlens/__init__.py`."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from artlens.errors import UserError

if TYPE_CHECKING:
    import pyarrow as pa
    from PIL import Image

    from artlens.store.catalog import TableEntry

QUERY_KINDS = ("key", "vector", "text", "image")


def encode_query(entry: "TableEntry", *, text: str | None = None,
                 image: "str | Path | bytes | Image.Image | None" = None, device: str = "auto",
                 cache_dir: str | None = None) -> np.ndarray:
    """Words or an image (a path, its bytes, or a PIL image) → one L2-normalised vector, made by the table's
    own model and weights (from its catalog row; weights whose checksum differs are refused)."""
    loaded = _model_for(entry, device, cache_dir)
    if text is not None:
        from artlens.pipeline.texts import encode_texts

        return encode_texts(loaded, [text])[0]
    return loaded.embed(loaded.preprocess(_as_image(image))[None])[0]


#: The models loaded for queries in this process, most recent last: a session of searches (the explorer, a
#: notebook) loads a table's model once, not at every query. Keyed by what names the weights exactly.
_MODELS: dict[tuple, object] = {}
MODELS_KEPT = 2


def _model_for(entry: "TableEntry", device: str, cache_dir: str | None):
    from artlens.pipeline.models.load import load_for_table

    ident = (entry.model, entry.model_ref, entry.pretrained, entry.checkpoint_sha256, entry.preprocess, device,
             cache_dir)
    if ident not in _MODELS:
        loaded = load_for_table(entry, device, cache_dir)
        while len(_MODELS) >= MODELS_KEPT:
            _MODELS.pop(next(iter(_MODELS)))
        _MODELS[ident] = loaded
    _MODELS[ident] = _MODELS.pop(ident)   # most recently used last
    return _MODELS[ident]


def _as_image(image) -> "Image.Image":
    from PIL import Image

    from artlens.pipeline.imaging.decode import decode_image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise UserError(f"image {str(path)!r} is not a file", argument="image")
        image = path.read_bytes()
    return decode_image(image)


def neighbors(store: str | Path, table: str, *, key: str | None = None, vector=None, text: str | None = None,
              image=None, k: int = 10, where: str | None = None, device: str = "auto",
              cache_dir: str | None = None) -> "pa.Table":
    """The k rows of `table` nearest to one query, best first, with their metadata and cosine `score`.

    Give exactly one of `key` (a row of the table, left out of its own results), `vector`, `text` or `image`
    (encoded with the table's own model: see `encode_query`). `where` is a SQL filter on the table's columns.
    """
    from artlens import store as stores

    given = [name for name, value in zip(QUERY_KINDS, (key, vector, text, image)) if value is not None]
    if len(given) != 1:
        raise UserError(f"give exactly one of {', '.join(QUERY_KINDS)} (got {', '.join(given) or 'none'})")
    if k < 1:
        raise UserError(f"k must be at least 1, got {k}", argument="k")
    with stores.open(store) as s:
        if key is not None:
            return s.neighbors(table, key=key, k=k, where=where)
        if vector is None:
            vector = encode_query(s.entry(table), text=text, image=image, device=device, cache_dir=cache_dir)
        return s.neighbors(table, vector=np.asarray(vector, np.float32), k=k, where=where)


def deformation_suite(entry: "TableEntry"):
    """The deformation suite (pipeline/perturb/suite.py `Suite`) that deformation table `entry` was made
    with, rebuilt from the bundled suite its catalog `preprocess` names and whose digest it records;
    `UnknownSuite` (a UserError, its `suite_name` the recorded name) when no bundled suite reproduces it."""
    from artlens.pipeline.perturb.recorded import recorded_suite

    return recorded_suite(entry)


def deformation_sheet(store, table: str, key: str, *, max_pixels: int | None = None) -> "Image.Image":
    """The contact sheet of painting `key` under deformation table `table`'s suite (a row per deformation:
    the clean image, then severities 1..5), drawn now from the clean row's own image: the pixels
    `artlens perturb --save-examples` writes for that key. `store`: a path or URL, or an open `Store`.
    `max_pixels`: the decode limit the run used (default: perturb's)."""
    from artlens import store as stores
    from artlens.pipeline.imaging.decode import DEFAULT_MAX_PIXELS
    from artlens.pipeline.perturb.recorded import row_sheet

    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if isinstance(store, stores.Store):
        return row_sheet(store, table, key, limit)
    with stores.open(store) as s:
        return row_sheet(s, table, key, limit)
