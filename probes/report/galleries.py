"""The paintings behind a report's numbers, as thumbnail galleries written next to the report (static files, no
server): per class the most typical and the most confused paintings of a classification result, the largest
residuals of a regression, neighbour sheets for a few seeded queries, and the map of a table.

Everything is read through the store: the rows behind a result (`Store.result_rows`), thumbnails
(`Store.image_bytes`, cached in the store), neighbours (`Store.neighbors`) and the map
(`artlens.probes.maps.map_for`, kept in the store). A painting whose image cannot be read (a table of imported
embeddings, a moved shard) is a card with its key and caption, never a missing tile."""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from artlens.errors import UserError
from artlens.store.filters import quote_ident

log = logging.getLogger(__name__)

GALLERIES_DIR = "galleries"
THUMB = 160            # longer side of a gallery thumbnail, px
PER_CLASS = 5          # typical and confused paintings shown per class
MAX_CLASSES = 24       # classes shown per result (the largest); the rest are left to the explorer
RESIDUALS = 12         # largest regression residuals shown
SHEET_QUERIES = 3      # neighbour sheets in the report
SHEET_K = 8


@dataclass(frozen=True)
class Tile:
    src: str | None      # relative path of the thumbnail in the report folder; None: no image, a card
    key: str
    caption: str


@dataclass
class Gallery:
    title: str
    tiles: list[Tile] = field(default_factory=list)


class Thumbnails:
    """Writes a table's thumbnails into the report's galleries folder, once per (table, key)."""

    def __init__(self, store, folder: Path):
        self.store, self.folder, self.written = store, folder, {}

    def tile(self, table: str, key: str, caption: str) -> Tile:
        ident = (table, key)
        if ident not in self.written:
            self.written[ident] = self._write(table, key)
        return Tile(self.written[ident], key, caption)

    def _write(self, table: str, key: str) -> str | None:
        try:
            data, media_type = self.store.image_bytes(table, key, size=THUMB)
        except UserError as exc:     # no images in the table, a moved shard, an unreadable member: a card
            log.info("report: no thumbnail of %r in %s: %s", key, table, exc)
            return None
        ext = {"image/jpeg": "jpg", "image/png": "png"}.get(media_type, "jpg")
        name = hashlib.sha256(f"{table}\0{key}".encode()).hexdigest()[:20] + f".{ext}"
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / name).write_bytes(data)
        return f"{self.folder.name}/{name}"


def _classes(rows: dict) -> list[str]:
    labels, counts = np.unique(np.asarray(rows["label"], dtype=object).astype(str), return_counts=True)
    return [str(c) for c in labels[np.argsort(-counts, kind="stable")][:MAX_CLASSES]]


def _score_column(rows: dict) -> str | None:
    return next((c for c in ("p_true", "score") if c in rows), None)


def classification_galleries(rows: dict, table: str, thumbs: Thumbnails) -> list[Gallery]:
    """Per class: the rows of that class the probe found most typical (highest out-of-fold score of the true
    class) and most confused (lowest), each captioned with what the probe predicted."""
    score = _score_column(rows)
    if score is None or "predicted" not in rows:
        return []
    labels = np.asarray(rows["label"], dtype=object).astype(str)
    values = np.asarray(rows[score], dtype=float)
    out = []
    for label in _classes(rows):
        idx = np.flatnonzero(labels == label)
        order = idx[np.lexsort((np.asarray(rows["key"], dtype=object)[idx].astype(str), -values[idx]))]
        for title, chosen in (("most typical", order[:PER_CLASS]), ("most confused", order[::-1][:PER_CLASS])):
            tiles = [thumbs.tile(table, str(rows["key"][i]),
                                 f"predicted {rows['predicted'][i]} · {score} {values[i]:.2f}") for i in chosen]
            out.append(Gallery(f"{label}: {title} ({len(idx)} rows)", tiles))
    return out


def residual_gallery(rows: dict, table: str, thumbs: Thumbnails) -> list[Gallery]:
    residual = np.asarray(rows["residual"], dtype=float)
    order = np.argsort(-np.abs(residual), kind="stable")[:RESIDUALS]
    tiles = [thumbs.tile(table, str(rows["key"][i]), f"target {float(rows['target'][i]):.3g} · predicted "
                         f"{float(rows['predicted'][i]):.3g}") for i in order]
    return [Gallery(f"largest residuals ({len(residual)} rows)", tiles)]


def result_galleries(store, result: dict, thumbs: Thumbnails) -> list[Gallery]:
    """The galleries of one result, from the rows the probe kept with it (none: no gallery)."""
    name, tables = result.get("name"), result.get("tables") or []
    if not name or not tables:
        return []
    try:
        table = store.result_rows(name)
    except UserError as exc:
        log.warning("report: the rows of %s cannot be read: %s", name, exc)
        return []
    if table is None or table.num_rows == 0 or "key" not in table.column_names:
        return []
    rows = table.to_pydict()
    if "residual" in rows:
        return residual_gallery(rows, tables[0], thumbs)
    if "label" in rows:
        return classification_galleries(rows, tables[0], thumbs)
    return []


def neighbour_sheets(store, table: str, thumbs: Thumbnails, seed: int = 0) -> list[Gallery]:
    """A few seeded query paintings of `table` and their nearest neighbours, the query first."""
    keys = sorted(store.sql(f"SELECT key FROM {quote_ident(table)}").column("key").to_pylist())
    if not keys:
        return []
    chosen = np.random.default_rng(seed).choice(len(keys), size=min(SHEET_QUERIES, len(keys)), replace=False)
    out = []
    for i in sorted(chosen):
        hits = store.neighbors(table, key=keys[i], k=SHEET_K).to_pydict()   # the query itself left out
        tiles = [thumbs.tile(table, keys[i], "query")]
        tiles += [thumbs.tile(table, str(k), f"cosine {float(s):.3f}") for k, s in zip(hits["key"], hits["score"])]
        out.append(Gallery(f"neighbours of {keys[i]} in {table}", tiles))
    return out


#: Columns never used to colour a map: identities and free text.
NOT_A_COLOUR = frozenset({"key", "shard", "source_path", "caption", "url", "link", "prompt", "title"})
MAX_COLOURS = 12


def colour_column(store, table: str) -> str | None:
    """The first text column of `table` with 2 to MAX_COLOURS values (a label worth colouring by), or None."""
    columns = store.sql(f"SELECT column_name, column_type FROM (DESCRIBE {quote_ident(table)})").to_pylist()
    for col in (c["column_name"] for c in columns if c["column_type"] == "VARCHAR"):
        if col in NOT_A_COLOUR:
            continue
        counted = store.sql(f"SELECT count(DISTINCT {quote_ident(col)}) AS n FROM {quote_ident(table)}")
        n = counted.column("n")[0].as_py()
        if 2 <= n <= MAX_COLOURS:
            return col
    return None


def map_figure(store, table: str, folder: Path):
    """The table's 2-D map (PCA, kept in the store) as a PNG, coloured by a label column; (path, caption)."""
    import matplotlib

    from artlens.probes.maps import map_for
    from artlens.probes.report.figures import DPI, PALETTE, STYLE, new_figure, short

    points = map_for(store, table, "pca").to_pydict()
    colour = colour_column(store, table)
    by_key = {}
    if colour:
        rows = store.sql(f"SELECT key, {quote_ident(colour)} AS c FROM {quote_ident(table)}").to_pydict()
        by_key = dict(zip(rows["key"], rows["c"]))
    with matplotlib.rc_context(STYLE):
        fig = new_figure(6.4, 5.2)
        ax = fig.add_subplot()
        x, y = np.asarray(points["x"]), np.asarray(points["y"])
        if colour:
            values = np.asarray([str(by_key.get(k)) for k in points["key"]], dtype=object)
            for i, value in enumerate(sorted(set(values))):
                mask = values == value
                ax.scatter(x[mask], y[mask], s=6, color=PALETTE[i % len(PALETTE)], label=short(value, 20),
                           linewidths=0)
            ax.legend(markerscale=2, frameon=False, loc="best", title=short(colour, 20))
        else:
            ax.scatter(x, y, s=6, color=PALETTE[0], linewidths=0)
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"{short(table, 40)}: PCA map of {len(x):,} rows")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"map-{hashlib.sha256(table.encode()).hexdigest()[:12]}.png"
        fig.savefig(path, dpi=DPI, metadata={"Software": None})
    caption = f"{table}: the first two principal components of its embeddings" + (
        f", coloured by {colour}" if colour else "")
    return f"{folder.name}/{path.name}", caption
