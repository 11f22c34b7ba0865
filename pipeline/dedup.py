"""`artlens dedup`: near-duplicate groups of a table's rows (reproductions of one work), as a key table.

    run_dedup(DedupConfig(store="artstore", table="paintings", threshold=0.95)).lines()

Pairs are rows whose embeddings' cosine similarity is at least `threshold` (vectors L2-normalised here, so a
table of unnormalised vectors is compared by cosine too; 1e-6 of float rounding is allowed, so threshold 1
finds exact copies). They are found by exact search (faiss `IndexFlatIP.range_search`, in blocks of queries
so memory stays bounded) for tables up to `exact_below` rows, else through the table's FAISS index
(`artlens index`): `range_search` where the index supports it (Flat, IVF, HNSW), otherwise the `neighbors`
nearest of each row filtered by the threshold; a large table without an index is searched exactly (slowly,
with a progress bar). Every pair an index finds is scored again exactly, so scores are exact and only
recall depends on the index.

Groups are the connected components of the pairs (single linkage): a chain a~b, b~c joins a and c even when
a and c are below the threshold, so the summary reports the largest group and the lowest similarity of any
two rows of one group, where chaining shows.

The output is the key table `<table>_dups` (kind `duplicates`, parent `table`; store/writer.py
`write_key_table`): one row per row of the table, `key`, `dup_group` (the smallest key of its group, so a
singleton's is its own key) and `score` (its highest similarity to another member; NULL for a singleton).
The table's own view then carries `dup_group` (store/query.py), which probes take as a split group
(`--group dup_group`). A re-run replaces the groups whole.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from artlens import store
from artlens.store.catalog import DUP_GROUP_COLUMN, DUPLICATES_KIND, TableEntry
from artlens.store.layout import check_table_name
from artlens.store.parts import fold
from artlens.store.writer import write_key_table

from artlens import __version__
from artlens.errors import UserError

METHODS = ("auto", "exact", "index")
SUFFIX = "_dups"
#: Similarity a pair may fall short of the threshold by (float32 rounding of a cosine of identical vectors).
TOLERANCE = 1e-6
#: Similarities computed per block of queries in exact search (the block is this / rows, at most 4096).
BLOCK_SIMILARITIES = 1 << 24
#: Groups larger than this have their lowest pair similarity measured on a seeded sample of this many rows.
MIN_SIMILARITY_SAMPLE = 4096


class DedupError(UserError):
    """A table or setting `artlens dedup` refuses (the message says what to do)."""


def _number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


@dataclass(frozen=True)
class DedupConfig:
    """The one config of `artlens dedup`, shared by the CLI and the Python API."""
    store: str | Path
    table: str
    threshold: float = 0.95        # cosine similarity in (0, 1] at which two rows are near-duplicates
    method: str = "auto"           # auto: exact up to exact_below rows, else the table's index; exact; index
    exact_below: int = 50_000      # auto: tables of at most this many rows are searched exactly
    neighbors: int = 64            # an index without range search: this many nearest of each row are checked
    progress: bool = True

    def __post_init__(self) -> None:
        if not _number(self.threshold) or not math.isfinite(self.threshold) or not 0 < self.threshold <= 1:
            raise DedupError(f"threshold must be a cosine similarity in (0, 1], e.g. 0.95, got {self.threshold!r}",
                             argument="threshold")
        if self.method not in METHODS:
            raise DedupError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}", argument="method")
        for name in ("exact_below", "neighbors"):
            value = getattr(self, name)
            least = 0 if name == "exact_below" else 1
            if not _number(value) or int(value) != value or value < least:
                raise DedupError(f"{name} must be a whole number of at least {least}, got {value!r}", argument=name)

    @property
    def output(self) -> str:
        return f"{self.table}{SUFFIX}"


@dataclass
class DedupSummary:
    table: str
    output: str
    threshold: float
    method: str                    # exact | index
    search: str                    # how pairs were found, in words
    rows: int = 0
    pairs: int = 0                 # pairs of rows with similarity >= threshold
    groups: int = 0                # groups of 2 rows or more
    rows_in_groups: int = 0
    largest: int = 0               # rows of the largest group (1: no duplicates)
    largest_group: str | None = None
    largest_min_similarity: float | None = None   # lowest pair similarity within the largest group
    min_similarity: float | None = None           # lowest pair similarity within any group
    min_group: str | None = None
    sampled: bool = False          # a group's lowest similarity was measured on a sample of its rows
    elapsed_s: float = 0.0

    def lines(self) -> list[str]:
        out = [f"table {self.table}: {self.groups:,} near-duplicate groups (cosine >= {self.threshold:g}) holding "
               f"{self.rows_in_groups:,} of {self.rows:,} rows, {self.pairs:,} pairs; written to {self.output}",
               f"search: {self.search}, {self.elapsed_s:.1f} s"]
        if self.groups:
            approx = " (on a sample of its rows)" if self.sampled else ""
            out.append(f"largest group: {self.largest:,} rows (dup_group {self.largest_group!r}), lowest pair "
                       f"similarity within it {self.largest_min_similarity:.4f}{approx}")
            out.append(f"lowest pair similarity within any group: {self.min_similarity:.4f} (dup_group "
                       f"{self.min_group!r}); groups are single-linkage chains, so two rows of one group may be "
                       "less similar than the threshold")
        out.append(f"probes: --group {DUP_GROUP_COLUMN} keeps each group on one side of every split")
        return out

    def as_dict(self) -> dict:
        return asdict(self)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _source(s: "store.Store", cfg: DedupConfig) -> tuple[TableEntry, np.ndarray, np.ndarray]:
    """(entry, keys sorted, L2-normalised vectors) of the table, after the checks that refuse it."""
    entry = s.entry(cfg.table)
    if not entry.has_embeddings:
        raise DedupError(f"table {cfg.table!r} is a {entry.kind!r} table without embeddings: dedup needs a table of "
                         "embeddings", argument="table")
    if entry.parent:
        raise DedupError(f"table {cfg.table!r} is a {entry.kind!r} table of {entry.parent!r}: its keys name several "
                         f"rows each, so its rows cannot carry one group each; dedup {entry.parent!r}",
                         argument="table")
    check_table_name(cfg.output)
    columns = s.sql(f"SELECT * FROM {_ident(cfg.table)} LIMIT 0").column_names
    if DUP_GROUP_COLUMN in map(fold, columns) and s.duplicates_of(cfg.table) is None:
        raise DedupError(f"table {cfg.table!r} has a column {DUP_GROUP_COLUMN!r} of its own, which the groups would "
                         "hide: rename it (re-import the table) before running dedup", argument="table")
    out = s.entry(cfg.output) if cfg.output in s.tables() else None
    if out is not None and (out.kind, out.parent) != (DUPLICATES_KIND, cfg.table):
        raise DedupError(f"table {cfg.output!r} exists and is not the near-duplicate groups of {cfg.table!r} (it is "
                         f"a {out.kind!r} table): it is not replaced; rename the table", argument="table")
    data = s.sql(f"SELECT key, embedding FROM {_ident(cfg.table)} ORDER BY key")
    if data.num_rows == 0:
        raise DedupError(f"table {cfg.table!r} has no rows", argument="table")
    keys = np.asarray(data.column("key").to_pylist(), dtype=object)
    if len(set(keys)) != len(keys):
        raise DedupError(f"table {cfg.table!r} has keys that name several rows; dedup needs unique keys",
                         argument="table")
    flat = data.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    X = np.asarray(flat, dtype=np.float32).reshape(data.num_rows, -1)
    X = np.ascontiguousarray(X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12), dtype=np.float32)
    return entry, keys, X


def _blocks(n: int, desc: str, progress: bool, size: int | None = None):
    size = size or max(1, min(4096, BLOCK_SIMILARITIES // max(n, 1)))
    for start in tqdm(range(0, n, size), desc=desc, unit="block", disable=not progress):
        yield start, min(n, start + size)


def _exact_pairs(X: np.ndarray, threshold: float, desc: str, progress: bool) -> tuple[np.ndarray, ...]:
    """(i, j, similarity) of every pair i < j at or above the threshold: range search of a flat index."""
    import faiss

    index = faiss.IndexFlatIP(X.shape[1])
    index.add(X)
    found = []
    for start, stop in _blocks(len(X), desc, progress):
        lims, sims, ids = index.range_search(X[start:stop], threshold - TOLERANCE)
        query = np.repeat(np.arange(start, stop), np.diff(lims.astype(np.int64)))
        keep = ids > query
        found.append((query[keep], ids[keep].astype(np.int64), sims[keep]))
    return _joined(found)


def _joined(found: list) -> tuple[np.ndarray, ...]:
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return tuple(np.concatenate([f[k] for f in found]) for k in range(3))


def _index_pairs(loaded, keys: np.ndarray, X: np.ndarray, cfg: DedupConfig, desc: str
                 ) -> tuple[tuple[np.ndarray, ...], str]:
    """Pairs through the table's FAISS index (range search, else k nearest), each scored again exactly."""
    position = {key: i for i, key in enumerate(keys)}
    row_of = np.asarray([position.get(k, -1) for k in loaded.keys], dtype=np.int64)
    index, radius = loaded.index, cfg.threshold - TOLERANCE
    try:
        index.range_search(X[:1], radius)
        ranged = True
    except RuntimeError:  # FAISS: range search not implemented for this index type
        ranged = False
    k = min(cfg.neighbors + 1, index.ntotal)
    found = []
    for start, stop in _blocks(len(X), desc, cfg.progress, size=1024):
        if ranged:
            lims, _, ids = index.range_search(X[start:stop], radius)
            query = np.repeat(np.arange(start, stop), np.diff(lims.astype(np.int64)))
        else:
            sims, ids = index.search(X[start:stop], k)
            ok = (ids >= 0) & (sims >= radius)
            query = np.repeat(np.arange(start, stop), ids.shape[1]).reshape(ids.shape)[ok]
            ids = ids[ok]
        other = row_of[np.clip(ids, 0, None)] if len(ids) else np.zeros(0, np.int64)
        keep = (ids >= 0) & (other >= 0) & (other != query)
        i, j = np.minimum(query[keep], other[keep]), np.maximum(query[keep], other[keep])
        sims = np.einsum("ij,ij->i", X[i], X[j])
        good = sims >= radius
        found.append((i[good], j[good], sims[good]))
    i, j, sims = _joined(found)
    if len(i):  # a pair found from both of its rows is one pair
        _, first = np.unique(i * len(X) + j, return_index=True)
        i, j, sims = i[first], j[first], sims[first]
    params = loaded.entry.search_params()
    tuned = f" ({', '.join(f'{n}={v}' for n, v in params.items())})" if params else ""
    how = "range search" if ranged else f"the {cfg.neighbors} nearest of each row, filtered by the threshold"
    return (i, j, sims), f"the table's FAISS index {loaded.entry.factory}{tuned}, {how}"


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n)).tocsr()
    return connected_components(graph, directed=False)[1]


def _min_similarity(X: np.ndarray, members: np.ndarray) -> tuple[float, bool]:
    """The lowest similarity of two rows of one group (on a seeded sample of a very large group)."""
    sampled = len(members) > MIN_SIMILARITY_SAMPLE
    if sampled:
        members = np.sort(np.random.default_rng(0).choice(members, MIN_SIMILARITY_SAMPLE, replace=False))
    V = X[members]
    low = 1.0
    for start in range(0, len(V), 1024):
        block = V[start:start + 1024] @ V.T
        np.fill_diagonal(block[:, start:start + 1024], np.inf)
        low = min(low, float(block.min()))
    return low, sampled


def _groups(keys: np.ndarray, X: np.ndarray, pairs: tuple[np.ndarray, ...], summary: DedupSummary) -> pa.Table:
    """The output rows (key, dup_group, score) and the summary's group counts."""
    i, j, sims = pairs
    n = len(keys)
    labels = _components(n, i, j)
    best = np.full(n, -np.inf)
    np.maximum.at(best, i, sims)
    np.maximum.at(best, j, sims)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    group = np.empty(n, dtype=object)
    sizes = []
    for members in np.split(order, bounds):
        group[members] = min(keys[members])   # the smallest key (code-point order, as DuckDB sorts text)
        if len(members) > 1:
            sizes.append((len(members), group[members[0]], members))
    summary.rows, summary.pairs = n, len(i)
    summary.groups, summary.rows_in_groups = len(sizes), sum(m for m, _, _ in sizes)
    summary.largest = max((m for m, _, _ in sizes), default=1)
    lows = []
    for size, name, members in sizes:
        low, sampled = _min_similarity(X, members)
        summary.sampled = summary.sampled or sampled
        lows.append((low, name))
    if sizes:
        largest = min((s for s in sizes if s[0] == summary.largest), key=lambda s: s[1])
        summary.largest_group = largest[1]
        summary.largest_min_similarity = next(low for low, name in lows if name == largest[1])
        summary.min_similarity, summary.min_group = min(lows, key=lambda t: (t[0], t[1]))
    score = [None if math.isinf(b) else float(b) for b in best]
    return pa.table({"key": pa.array(list(keys), pa.string()), DUP_GROUP_COLUMN: pa.array(list(group), pa.string()),
                     "score": pa.array(score, pa.float64())})


def _entry(cfg: DedupConfig, source: TableEntry, summary: DedupSummary) -> TableEntry:
    made = {"threshold": cfg.threshold, "method": summary.method, "search": summary.search,
            "linkage": "single (connected components)", "rows": summary.rows, "pairs": summary.pairs}
    return TableEntry(
        name=cfg.output, kind=DUPLICATES_KIND, parent=source.name, model=source.model, model_ref=source.model_ref,
        pretrained=source.pretrained, checkpoint_sha256=source.checkpoint_sha256,
        preprocess=f"near-duplicate groups of {source.name!r}: cosine >= {cfg.threshold:g}, single linkage; "
                   f"{summary.search}", dim=0, dtype="", source=json.dumps(made, sort_keys=True),
        artlens_version=__version__)


def run_dedup(cfg: DedupConfig) -> DedupSummary:
    start = time.perf_counter()
    with store.open(cfg.store) as s:
        source, keys, X = _source(s, cfg)
        method = cfg.method
        loaded = None
        if method != "exact" and (method == "index" or len(keys) > cfg.exact_below):
            loaded = s.index(cfg.table)
            if loaded is None and method == "index":
                raise DedupError(f"table {cfg.table!r} has no FAISS index: build one (artlens index --store "
                                 f"{cfg.store} --table {cfg.table}) or use method exact", argument="method")
        desc = f"dedup {cfg.table}"
        if loaded is not None:
            pairs, search = _index_pairs(loaded, keys, X, cfg, desc)
            summary = DedupSummary(cfg.table, cfg.output, cfg.threshold, "index", search)
        else:
            pairs = _exact_pairs(X, cfg.threshold, desc, cfg.progress)
            why = "" if len(keys) <= cfg.exact_below or method == "exact" else (
                f" (no index; `artlens index --table {cfg.table}` makes tables of more than "
                f"{cfg.exact_below:,} rows faster)")
            summary = DedupSummary(cfg.table, cfg.output, cfg.threshold, "exact",
                                   f"exact (faiss IndexFlatIP range search){why}")
    table = _groups(keys, X, pairs, summary)
    write_key_table(cfg.store, _entry(cfg, source, summary), table)
    summary.elapsed_s = time.perf_counter() - start
    return summary
