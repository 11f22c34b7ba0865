"""A table's 2-D map kept in the store: one Parquet file per (table, method), `maps/<table>/<method>.parquet`.

    key  VARCHAR    the row's key (every row of the table when the map was made)
    x, y FLOAT      its coordinates

The file's key-value metadata (`artlens.map`, JSON) records the method, its seed, the row count and the
fingerprint of the table's parts (their names and sizes) when the map was made, so a table that gained, lost
or rewrote a part since is noticed: its map is stale, and `Store.map` answers None (the caller recomputes).
The map is computed outside the store (artlens.probes.maps: PCA, UMAP); the store only keeps and checks it.
Written to a temporary name and renamed, so a reader sees the old map or the new. Nothing here imports
anything outside `artlens.store`.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from artlens.store.errors import ArtlensError, UserError
from artlens.store.parts import write_atomic

META_KEY = b"artlens.map"


class MapError(UserError, ValueError):
    """Map data that cannot be kept (keys and coordinates that do not match)."""


class UnreadableMap(ArtlensError):
    """A map file that exists but cannot be read as a map (the message says why)."""


def fingerprint(parts: list[Path]) -> str:
    """A hash of the parts' file names and sizes: changes when a part is added, removed or rewritten."""
    digest = hashlib.sha1(b"artlens-map-parts\0")
    for path in sorted(parts, key=lambda p: p.name):
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # gone since the glob: it is not part of the table any more
            continue
        digest.update(f"{path.name}\0{size}\0".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:20]


def map_table(keys, xy, info: dict) -> pa.Table:
    """keys (n) and xy (n, 2) as the map's Arrow table, `info` (JSON-ready) in its schema metadata."""
    keys = [str(k) for k in keys]
    xy = np.asarray(xy, dtype=np.float32)
    if xy.ndim != 2 or xy.shape[1] != 2 or len(keys) != xy.shape[0]:
        raise MapError(f"a map needs one (x, y) per key: {len(keys)} keys, coordinates of shape {xy.shape}",
                       argument="xy")
    if not np.isfinite(xy).all():
        raise MapError("a map's coordinates must be finite numbers", argument="xy")
    meta = {**info, "rows": len(keys)}
    schema = pa.schema([("key", pa.string()), ("x", pa.float32()), ("y", pa.float32())],
                       metadata={META_KEY: json.dumps(meta, sort_keys=True).encode()})
    return pa.table([pa.array(keys, pa.string()), pa.array(xy[:, 0]), pa.array(xy[:, 1])], schema=schema)


def write_map(path: Path, table: pa.Table) -> Path:
    """Write the map atomically (a temporary name in the same folder, then a rename)."""
    write_atomic(table, path)
    return path


def map_info(table: pa.Table) -> dict:
    """The metadata a map was written with (method, seed, rows, parts, ...); {} when it has none."""
    raw = (table.schema.metadata or {}).get(META_KEY)
    try:
        info = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def read_map(path: Path, parts: str) -> pa.Table | None:
    """The map at `path` when it was made from parts of fingerprint `parts`; None when there is none or it
    is stale. UnreadableMap when the file is there but is not a readable map."""
    if not path.is_file():
        return None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - truncated, empty, not Parquet: any reason means unreadable
        raise UnreadableMap(" ".join(str(exc).split())) from None
    if [f.name for f in table.schema][:3] != ["key", "x", "y"]:
        raise UnreadableMap(f"columns {table.column_names}, not key, x, y")
    info = map_info(table)
    if info.get("parts") != parts or info.get("rows") != table.num_rows:
        return None
    return table
