"""FAISS indexes over store tables: choose a kind, build, tune for recall, measure it, add new parts, search.

Index ids are 0..n-1 in the order rows were added; `<generation>.ids.parquet` maps each id to its row's
(key, shard), so nothing is matched by position in a file. Inner product on L2-normalised vectors = cosine.
An index records the table state it covers ({part: size}); new parts are added incrementally, and a part
that changed or vanished makes the index stale until rebuilt.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import faiss
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from artlens.store.catalog import Catalog, IndexEntry
from artlens.store.errors import UserError
from artlens.store.layout import StoreLayout, exclusive_lock, temporary_path
from artlens.store.parts import write_atomic

log = logging.getLogger(__name__)

EXACT_BELOW = 10_000          # auto: exact search below this many rows
HNSW_M = 32
IVFSQ_FROM = 500_000          # auto: IVF + SQ8 + exact re-ranking from this many rows (docs/performance.md)
IVFPQ_MIN_ROWS = 39 * 256     # ivfpq: FAISS trains 256 centroids per PQ sub-quantizer on >= 39 points each
LOCK_NAME = ".lock"           # indexes/<table>/.lock: held while a generation is committed


class IndexUnavailable(UserError, RuntimeError):
    """An index that is missing, stale or cannot be built; the message says what to run."""


@dataclass(frozen=True)
class IndexKind:
    factory: str              # FAISS factory template; {nlist} and {m} are filled from the table's size
    tune: str | None          # the search parameter tuned for recall
    grid: tuple[int, ...]     # values tried, smallest first
    build: tuple[tuple[str, int], ...] = ()   # construction parameters set before adding
    # fixed search parameters (FAISS ParameterSpace names), set before tuning and recorded with the tuned one in
    # the catalog's params, so a loaded index searches exactly as the one whose recall was measured
    search: tuple[tuple[str, float], ...] = ()


KINDS: dict[str, IndexKind] = {
    "flat": IndexKind("Flat", None, ()),
    # efConstruction 100 instead of FAISS' 40: on clustered 768-d data it lifts 10-recall@10 at efSearch 64
    # from 0.93 to 0.99 (250k vectors) for about 2.5x the build time (docs/performance.md)
    "hnsw": IndexKind(f"HNSW{HNSW_M},Flat", "efSearch", (16, 32, 64, 128, 256, 512),
                      build=(("efConstruction", 100),)),
    "ivfpq": IndexKind("OPQ{m},IVF{nlist},PQ{m}", "nprobe", (1, 2, 4, 8, 16, 32, 64, 128, 256)),
    # inverted lists of 8-bit scalar-quantised codes (a quarter of the bytes HNSW reads per distance), the
    # 2 x k best re-ranked exactly against the stored float vectors (RFlat): on 1M clustered 768-d vectors
    # 0.95 at nprobe 16 in under 1 ms, built in under 2 minutes where HNSW took 12 (docs/performance.md)
    "ivfsq": IndexKind("IVF{nlist},SQ8,RFlat", "nprobe", (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256),
                       search=(("k_factor_rf", 2),)),
}


def parse_bytes(text: str | int) -> int:
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)i?B?\s*", str(text), re.IGNORECASE)
    if not match:
        raise UserError(f"cannot read memory size {text!r}; use e.g. 4G, 512M, 1500000000", argument="max_memory")
    return int(float(match.group(1)) * 1024 ** "BKMGT".index((match.group(2) or "B").upper()))


def hnsw_bytes(n: int, d: int) -> int:
    return int(n * (4 * d + HNSW_M * 2 * 4 * 1.1 + 16))


def _nlist(n: int) -> int:
    nlist = int(2 ** round(np.log2(max(1.0, 4 * np.sqrt(n)))))
    return max(1, min(nlist, n // 39))


def ivfsq_bytes(n: int, d: int) -> int:
    """SQ8 codes + the float vectors kept for re-ranking + 8-byte ids per row, and the coarse centroids."""
    return n * (d + 4 * d + 8) + _nlist(n) * 4 * d


#: What `auto` builds: the first (kind, rows from, rows below, bytes of its index) whose row range holds the
#: table and whose index fits the memory budget. Exact search below EXACT_BELOW rows whatever the budget;
#: ivfpq, sized to the budget, always fits.
AUTO: tuple[tuple[str, int, float, Callable[[int, int], int]], ...] = (
    ("flat", 0, EXACT_BELOW, lambda n, d: 0),
    ("ivfsq", IVFSQ_FROM, float("inf"), ivfsq_bytes),
    ("hnsw", EXACT_BELOW, float("inf"), hnsw_bytes),
    ("ivfpq", 0, float("inf"), lambda n, d: 0),
)


def choose_kind(n: int, d: int, max_memory: int) -> str:
    """autofaiss-style choice: exact when small, HNSW while it fits in memory, IVF with 8-bit codes and exact
    re-ranking for large tables (faster than HNSW there, docs/performance.md), OPQ+IVF+PQ beyond the budget."""
    return next(kind for kind, low, high, size in AUTO if low <= n < high and size(n, d) <= max_memory)


def _pq_m(n: int, d: int, max_memory: int) -> int:
    budget = max(4, int(max_memory * 0.9 / max(n, 1)) - 16)  # bytes per vector left for PQ codes
    divisors = [m for m in range(1, d + 1) if d % m == 0 and m <= min(budget, d // 4, 256)]
    return max(divisors) if divisors else 1


#: For raw factory strings: the first matching structure decides the parameter tuned for recall.
TUNABLE = (("IVF", KINDS["ivfpq"]), ("HNSW", KINDS["hnsw"]))
#: ... and a refine wrapper (",RFlat", "Refine(...)") re-ranks the same share of candidates as ivfsq does.
REFINED = ("RFlat", "Refine(")


def factory_for(kind: str, n: int, d: int, max_memory: int) -> tuple[str, IndexKind]:
    """(FAISS factory string, kind) for a kind name or a raw FAISS factory string."""
    spec = KINDS.get(kind)
    if spec is None:
        like = next((s for marker, s in TUNABLE if marker in kind), None)
        refined = KINDS["ivfsq"].search if any(marker in kind for marker in REFINED) else ()
        return kind, IndexKind(kind, like.tune if like else None, like.grid if like else (),
                               like.build if like else (), refined)
    return spec.factory.format(nlist=_nlist(n), m=_pq_m(n, d, max_memory)), spec


def table_state(layout: StoreLayout, table: str) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in layout.parts(table)}


def read_vectors(paths: list[Path], dim: int, progress: bool = False) -> tuple[pa.Table, np.ndarray]:
    """(key, shard) table and float32 vectors of these parts, in order."""
    ids, chunks = [], []
    for path in tqdm(paths, desc="read parts", unit="part", disable=not progress):
        part = pq.read_table(path, columns=["key", "shard", "embedding"])
        ids.append(part.select(["key", "shard"]))
        flat = part.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        chunks.append(np.asarray(flat, dtype=np.float32).reshape(-1, dim))
    rows = pa.concat_tables(ids) if ids else pa.table({"key": pa.array([], pa.string()),
                                                       "shard": pa.array([], pa.string())})
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, dim), np.float32)
    return rows, vectors


def exact_neighbors(queries: np.ndarray, base: np.ndarray, k: int) -> np.ndarray:
    _, ids = faiss.knn(queries, base, k, metric=faiss.METRIC_INNER_PRODUCT)
    return ids


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth))
    return hits / truth.size


def _without_self(ids: np.ndarray, query_ids: np.ndarray, k: int) -> np.ndarray:
    return np.array([[i for i in row if i != q][:k] for row, q in zip(ids, query_ids)])


def tune(index: faiss.Index, spec: IndexKind, vectors: np.ndarray, n_queries: int, target: float,
         seed: int) -> tuple[dict, float | None, int]:
    """Smallest grid value whose 10-recall@10 (query item excluded) reaches `target`, with the kind's fixed
    search parameters set; (params: the fixed ones and the tuned one, as set on the index; recall; queries)."""
    space = faiss.ParameterSpace()
    fixed = dict(spec.search)
    for name, v in fixed.items():
        space.set_index_parameter(index, name, v)
    n = len(vectors)
    if n < 2:
        return fixed, None, 0
    k = min(10, n - 1)
    query_ids = np.random.default_rng(seed).choice(n, size=min(n_queries, n), replace=False)
    queries = vectors[query_ids]
    truth = _without_self(exact_neighbors(queries, vectors, k + 1), query_ids, k)
    best: tuple[dict, float] = ({}, -1.0)
    for value in spec.grid or (None,):
        params = {spec.tune: value} if spec.tune else {}
        for name, v in params.items():
            space.set_index_parameter(index, name, v)
        _, found = index.search(queries, k + 1)
        recall = recall_at_k(_without_self(found, query_ids, k), truth)
        if recall > best[1]:
            best = (params, recall)
        if recall >= target:
            break
    for name, v in best[0].items():
        space.set_index_parameter(index, name, v)
    return {**fixed, **best[0]}, best[1], len(query_ids)


@contextmanager
def _index_lock(layout: StoreLayout, table: str) -> Iterator[None]:
    """The table's index lock (`indexes/<table>/.lock`, flock, exclusive): index writers commit one at a time.
    Raises OSError where the store cannot be written (a read-only mount)."""
    with exclusive_lock(layout.index_dir(table) / LOCK_NAME):
        yield


def _commit(layout: StoreLayout, table: str, index: faiss.Index, rows: pa.Table, entry: IndexEntry,
            based_on: str | None = None) -> bool:
    """Write a new generation of index files, then point the catalog at it, then drop old generations.

    All under the table's index lock, so concurrent builds (and readers adding new parts) never delete each
    other's files: the generations kept are the one committed and the one it replaced (for readers loading
    it); every other generation, and the temporaries of writers that died, are removed. `based_on`: commit
    only if the catalog still names that generation (a reader's update of an index that nobody replaced
    meanwhile); returns whether it committed."""
    with _index_lock(layout, table):
        previous = Catalog(layout.catalog_path).get_index(table)
        if based_on is not None and (previous is None or previous.generation != based_on):
            return False
        generation = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
        index_path, ids_path = layout.index_files(table, generation)
        tmp = temporary_path(index_path)
        try:
            faiss.write_index(index, str(tmp))
            os.replace(tmp, index_path)
        finally:
            tmp.unlink(missing_ok=True)  # a failed write (disk full) leaves no temporary behind
        write_atomic(rows.append_column("id", pa.array(np.arange(rows.num_rows), pa.int64())), ids_path)
        entry.generation = generation
        entry.memory_bytes = index_path.stat().st_size
        Catalog(layout.catalog_path).put_index(entry)
        layout.push(index_path, ids_path)  # a remote store: the index files, then the catalog row naming them
        layout.push_catalog()
        keep = {generation, previous.generation if previous else ""}
        for old in index_path.parent.iterdir():  # keep the previous generation for readers that hold it
            if not old.name.startswith(".") and old.name.split(".")[0] not in keep:
                old.unlink(missing_ok=True)
                if layout.remote is not None:
                    layout.remote.delete(old)
        for stale in layout.stale_index_temporaries(table):
            stale.unlink(missing_ok=True)
    return True


@dataclass(frozen=True)
class IndexConfig:
    """The one config of `artlens index`, shared by the CLI and the Python API."""
    store: str | Path
    table: str
    kind: str = "auto"                # auto, a name of KINDS, or a FAISS factory string
    max_memory: str | int = "4G"      # the index's memory budget (auto chooses by it): bytes, or 4G, 512M, ...
    recall_queries: int = 1000        # sampled queries for the 10-recall@10 measurement
    target_recall: float = 0.95       # 10-recall@10 the search parameter is tuned to
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        if isinstance(self.recall_queries, bool) or not isinstance(self.recall_queries, int) \
                or self.recall_queries < 1:
            raise IndexUnavailable(f"recall_queries must be a whole number of at least 1, got "
                                   f"{self.recall_queries!r}", argument="recall_queries")
        if not isinstance(self.target_recall, (int, float)) or isinstance(self.target_recall, bool) \
                or not 0 < self.target_recall <= 1:
            raise IndexUnavailable(f"target_recall must be a 10-recall@10 in (0, 1], e.g. 0.95, got "
                                   f"{self.target_recall!r}", argument="target_recall")


def build_index(config: IndexConfig | str | Path, table: str | None = None, **options) -> IndexEntry:
    """Build, tune and commit the index of a table: `build_index(IndexConfig(store, table, kind="flat"))`,
    or the same as arguments: `build_index(store, table, kind="flat")`."""
    cfg = config if isinstance(config, IndexConfig) else IndexConfig(config, table, **options)
    table, seed, progress = cfg.table, cfg.seed, cfg.progress
    layout = StoreLayout.at(cfg.store)
    entry = Catalog(layout.catalog_path).get(table)
    if entry is None:
        raise IndexUnavailable(f"no table {table!r} in {layout.root}")
    entry.unique_keys_needed("FAISS indexes")
    state = table_state(layout, table)
    rows, vectors = read_vectors(layout.parts(table), entry.dim, progress)
    if rows.num_rows == 0:
        raise IndexUnavailable(f"table {table!r} has no rows to index")
    budget = parse_bytes(cfg.max_memory)
    name = choose_kind(len(vectors), entry.dim, budget) if cfg.kind == "auto" else cfg.kind
    if name == "ivfpq" and len(vectors) < IVFPQ_MIN_ROWS:
        raise IndexUnavailable(f"kind 'ivfpq' needs at least {IVFPQ_MIN_ROWS:,} rows to train its codebooks "
                               f"(FAISS: 39 per centroid, 256 centroids); table {table!r} has {len(vectors):,}: "
                               "use kind flat (exact) or hnsw", argument="kind")
    factory, spec = factory_for(name, len(vectors), entry.dim, budget)
    try:
        index = faiss.index_factory(entry.dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise IndexUnavailable(f"cannot build index {factory!r}: kinds are auto, {', '.join(KINDS)}, "
                          f"or a FAISS factory string ({str(exc).strip().splitlines()[-1]})") from None
    _set_build_params(index, spec)
    start = time.perf_counter()
    try:
        _train_and_add(index, vectors, seed, progress)
    except RuntimeError as exc:  # FAISS refuses the data (e.g. fewer training points than centroids)
        reason = str(exc).strip().splitlines()[-1].split("failed: ")[-1].strip()
        raise IndexUnavailable(f"cannot build index {factory!r} over the {len(vectors):,} rows of {table!r}: "
                               f"{reason}; use kind flat (exact), hnsw, or a smaller factory",
                               argument="kind") from None
    build_s = time.perf_counter() - start
    params, recall, n_queries = tune(index, spec, vectors, cfg.recall_queries, cfg.target_recall, seed)
    result = IndexEntry(name=table, kind=name if name in KINDS else "factory", factory=factory,
                        params=json.dumps(params), rows=len(vectors), parts=json.dumps(state),
                        build_s=round(build_s, 3), recall_at_10=recall, recall_queries=n_queries)
    try:
        _commit(layout, table, index, rows, result)
    except UserError:
        raise
    except (OSError, RuntimeError) as exc:  # a read-only store, a full disk (FAISS: RuntimeError)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else " ".join(str(exc).split())
        raise IndexUnavailable(f"cannot write the index of {table!r} into {layout.index_dir(table)}: "
                               f"{reason}") from None
    return result


def _set_build_params(index: faiss.Index, spec: IndexKind) -> None:
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexRefine):  # a re-ranking wrapper: the graph is its base index's
        inner = faiss.downcast_index(inner.base_index)
    hnsw = getattr(inner, "hnsw", None)
    for name, value in spec.build:
        if hnsw is not None and hasattr(hnsw, name):
            setattr(hnsw, name, value)


def _train_and_add(index: faiss.Index, vectors: np.ndarray, seed: int, progress: bool) -> None:
    if not index.is_trained:
        sample = np.random.default_rng(seed).permutation(len(vectors))[: max(65_536, len(vectors) // 10)]
        index.train(vectors[np.sort(sample)])
    step = 50_000
    for start in tqdm(range(0, len(vectors), step), desc="add", unit="chunk", disable=not progress):
        index.add(vectors[start:start + step])


@dataclass
class LoadedIndex:
    entry: IndexEntry
    index: faiss.Index
    keys: np.ndarray          # id → key
    shards: np.ndarray        # id → shard

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.index.ntotal)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def _load(layout: StoreLayout, entry: IndexEntry) -> LoadedIndex:
    index_path, ids_path = layout.index_files(entry.name, entry.generation)
    for path in (index_path, ids_path):
        if not path.is_file():
            raise FileNotFoundError(2, "No such file or directory", str(path))
    index = faiss.read_index(str(index_path))
    space = faiss.ParameterSpace()
    for name, value in entry.search_params().items():
        space.set_index_parameter(index, name, value)
    ids = pq.read_table(ids_path).sort_by("id")
    return LoadedIndex(entry, index, ids.column("key").to_numpy(zero_copy_only=False),
                       ids.column("shard").to_numpy(zero_copy_only=False))


def _load_current(layout: StoreLayout, table: str, entry: IndexEntry) -> LoadedIndex:
    """Load the generation the catalog names; if its files vanish meanwhile (a concurrent commit replaced it
    twice), the catalog is read again. A catalog that keeps naming missing files: rebuild."""
    for _ in range(20):
        try:
            return _load(layout, entry)
        except (OSError, RuntimeError, pa.ArrowException) as exc:  # missing, or unreadable
            missing = exc
            again = Catalog(layout.catalog_path).get_index(table)
            if again is None or again.generation == entry.generation:
                break
            entry = again
    raise IndexUnavailable(f"the index of {table!r} cannot be read (generation {entry.generation!r}: "
                           f"{' '.join(str(missing).split())}); rebuild it: artlens index --store {layout.root} "
                           f"--table {table}")


def open_index(root: str | Path, table: str, dim: int, update: bool = True) -> LoadedIndex | None:
    """The table's index, brought up to date with new parts (persisted where the store can be written);
    None when there is none. Raises IndexUnavailable when parts it covers changed or vanished, or its files
    are missing (rebuild needed)."""
    layout = StoreLayout.at(root)
    entry = Catalog(layout.catalog_path).get_index(table)
    if entry is None:
        return None
    now = table_state(layout, table)
    _check_fresh(entry, now, root)
    loaded = _load_current(layout, table, entry)
    if loaded.entry.generation != entry.generation:  # replaced while it was loaded
        _check_fresh(loaded.entry, now, root)
    covered = loaded.entry.covered()
    new = sorted(p for p in now if p not in covered)
    if new and update:
        loaded = _add_parts(layout, loaded, new, now, dim)
    return loaded


def _check_fresh(entry: IndexEntry, now: dict[str, int], root: str | Path) -> None:
    changed = sorted(p for p, size in entry.covered().items() if now.get(p) != size)
    if changed:
        raise IndexUnavailable(f"the index of {entry.name!r} is stale: {len(changed)} part(s) it covers changed "
                               f"or vanished (e.g. {changed[0]}); rebuild it: artlens index --store {root} "
                               f"--table {entry.name}")


def _add_parts(layout: StoreLayout, loaded: LoadedIndex, new: list[str], now: dict[str, int],
               dim: int) -> LoadedIndex:
    rows, vectors = read_vectors([layout.table_dir(loaded.entry.name) / p for p in new], dim)
    try:
        loaded.index.add(vectors)
    except RuntimeError as exc:
        raise IndexUnavailable(f"index {loaded.entry.factory!r} cannot take new rows ({exc}); rebuild it with "
                          f"artlens index --store {layout.root} --table {loaded.entry.name}") from None
    old = pa.table({"key": loaded.keys, "shard": loaded.shards})
    all_rows = pa.concat_tables([old.cast(rows.schema), rows])
    based_on = loaded.entry.generation
    entry = IndexEntry(**vars(loaded.entry))
    entry.rows, entry.parts = loaded.index.ntotal, json.dumps(now)
    try:  # keep the update for the next reader; reading never needs it, so a store that cannot be written
        # (a read-only mount, a full disk) or an index another process replaced meanwhile is left as it is
        _commit(layout, entry.name, loaded.index, all_rows, entry, based_on=based_on)
    except (OSError, RuntimeError) as exc:  # RuntimeError: FAISS' write errors, CatalogError
        log.info("the index of %r was updated in memory only: %s", entry.name, " ".join(str(exc).split()))
    return LoadedIndex(entry, loaded.index, all_rows.column("key").to_numpy(zero_copy_only=False),
                       all_rows.column("shard").to_numpy(zero_copy_only=False))
