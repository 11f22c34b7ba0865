"""The per-shard commit loop every engine and `artlens perturb` share.

    batches of shard s ──ShardCommits.add──▶ a PendingShard per (table, s): rows, embeddings, failures
        ──s's last batch──▶ Committer (one background thread) ──▶ TableWriter.commit(s, rows, embeddings, failures)
                                                                   or record_failures(s, ...) when s could not be read

A batch is anything with the fields of `ShardPiece` (loader.ShardBatch, perturb's PerturbBatch); a shard's
batches come in order and its last one is flagged `last` (Ray reorders its rows before they get here). The
engine passes each batch's embeddings as a function of the table's index, called only for the tables that
still need the shard: the local engine leaves them on the GPU and the commit thread copies each shard back
once, waiting on a CUDA event for the model's work and nothing else (docs/performance.md). A shard counts as
committed (`OutputTable.done`) once its part is renamed into place (store/writer.py), and only then.

Keys are unique in an extracted table (`OutputTable.unique_keys`): at commit, a row whose key the table
already holds (from another shard, committed by this run, an earlier one or another process) is not added but
becomes a failure of stage `duplicate_key` naming both shards. The table's keys are read once per process (the
key and shard columns of its parts, at the first commit), then only the parts that appeared since, before each
commit, so `--devices` processes see each other's commits; only two shards sharing keys committed at the same
instant by two processes can both add them. A shard found committed when its commit comes (the same shard
under another path, committed meanwhile) is not written again.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Protocol

import numpy as np
import torch

from artlens.store.writer import TableWriter

from artlens.pipeline.extract.summary import RunSummary, ShardTally
from artlens.pipeline.failures import Failure, SampleError


class ShardPiece(Protocol):
    """One batch of one shard, as the commit loop reads it."""
    shard: str
    rows: list[dict]
    failures: list[Failure]
    last: bool                   # the shard's final batch
    commit: bool                 # False: the shard could not be read (its failures are recorded, it is not committed)
    gpu_decoded: int
    skipped: int


@dataclass
class OutputTable:
    """A table a run writes: its writer, its embedding width, and the shards it holds (committed).
    `unique_keys`: refuse rows whose key the table holds already (extraction; perturb tables hold a key
    once per deformation and severity)."""
    writer: TableWriter
    dim: int
    done: set[str] = field(default_factory=set)
    unique_keys: bool = False

    @property
    def name(self) -> str:
        return self.writer.entry.name

    def mark_done(self, urls: Iterable[str]) -> None:
        """Record the shards of `urls` the table already holds (committed by an earlier run)."""
        self.done = {u for u in urls if self.writer.is_done(u)}

    def unique_rows(self, shard: str, rows: list[dict]) -> tuple[list[int], list[Failure]]:
        """(indices of the rows whose keys neither the table nor an earlier row holds, a `duplicate_key`
        failure for each other row, naming the shard that holds the key)."""
        held = self.writer.committed_keys()
        keep, refused, seen = [], [], set()
        for i, row in enumerate(rows):
            key = row["key"]
            other = held.get(key, shard if key in seen else None)
            if other is None:
                seen.add(key)
                keep.append(i)
                continue
            where = ("earlier in this shard" if key in seen else
                     f"from an earlier version of this shard {shard} (its file changed since; `overwrite` rebuilds "
                     "the table)" if other == shard else f"from shard {other}")
            refused.append(Failure(key, shard, "duplicate_key", f"key {key!r} is already in table {self.name!r} "
                                   f"{where}; this row of shard {shard} was not added"))
        return keep, refused


def committed_among(tables: list[OutputTable], shards: list[str]) -> set[str]:
    """The shards of `shards` that every table holds."""
    return {u for u in shards if all(u in t.done for t in tables)}


@dataclass
class PendingShard:
    """What a shard has produced for one table so far."""
    rows: list[dict] = field(default_factory=list)
    vectors: list = field(default_factory=list)     # torch tensors (maybe on the GPU) or numpy arrays
    failures: list[Failure] = field(default_factory=list)


class ShardCommits:
    """The loop of one round: accumulate each (table, shard), commit a shard when its last batch arrives,
    tally what every shard produced into `summary`. With `strict`, the first failed sample stops the run.
    Exiting waits for every commit (their errors surface here)."""

    def __init__(self, tables: list[OutputTable], summary: RunSummary, strict: bool = False):
        self.tables, self.summary, self.strict = tables, summary, strict
        self.pending: dict[tuple[int, str], PendingShard] = {}
        self.open: set[str] = set()      # shards with batches seen and the last one not yet
        self.finished = 0                # shards whose last batch arrived in this round
        self.committer = Committer(summary, strict)

    def __enter__(self) -> "ShardCommits":
        return self

    def __exit__(self, *exc) -> None:
        self.committer.close()

    def add(self, batch: ShardPiece, embed: Callable[[int], Any]) -> None:
        """Take one batch; `embed(i)` gives its embeddings for table i (called only when it has rows)."""
        if self.strict and batch.failures:
            raise SampleError(batch.failures[0])
        if batch.shard not in self.open:
            self.summary.start_shard(batch.shard)
            self.open.add(batch.shard)
        self.summary.count(batch.shard, ShardTally.of(batch))
        counts_images = True             # the first table to commit the shard counts its refused rows' images
        for i, table in enumerate(self.tables):
            if batch.shard in table.done:
                continue
            acc = self.pending.setdefault((i, batch.shard), PendingShard())
            if batch.rows:
                acc.rows.extend(batch.rows)
                acc.vectors.append(embed(i))   # local engine: no sync, the GPU runs ahead
            acc.failures.extend(batch.failures)
            if batch.last:
                self.committer.submit(table, batch.shard, self.pending.pop((i, batch.shard)), batch.commit,
                                      counts_images)
                counts_images = False
        if batch.last:
            self.open.discard(batch.shard)
            self.finished += 1


class Committer:
    """Writes finished shards on one background thread, so Parquet encoding, fsync and catalog updates
    overlap the next batches. Errors surface on the next submit and at `close`; `close` waits for every
    commit. The rows a commit refused (duplicate keys) are counted into `summary` as failures, on the caller's
    thread, when their commit's result is taken."""

    def __init__(self, summary: RunSummary | None = None, strict: bool = False) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="artlens-commit")
        self.futures: list = []          # (future, shard, whether its refused rows count as images)
        self.summary, self.strict = summary, strict

    def submit(self, table: OutputTable, shard: str, acc: PendingShard, readable: bool,
               counts_images: bool = True) -> None:
        for item in [item for item in self.futures if item[0].done()]:
            self.futures.remove(item)
            self._take(*item)
        done = None
        if acc.vectors and isinstance(acc.vectors[0], torch.Tensor) and acc.vectors[0].is_cuda:
            done = torch.cuda.Event()   # the commit thread waits for the model's work, not longer
            done.record()
        future = self.pool.submit(commit_shard, table, shard, acc, readable, done, self.strict)
        self.futures.append((future, shard, counts_images))

    def _take(self, future, shard: str, counts_images: bool) -> None:
        refused = future.result()
        if refused and self.summary is not None:
            self.summary.count(shard, ShardTally(images=-refused if counts_images else 0, failures=refused))

    def close(self) -> None:
        try:
            for item in self.futures:
                self._take(*item)
        finally:
            self.pool.shutdown(wait=True)


def commit_shard(table: OutputTable, shard: str, acc: PendingShard, readable: bool, done=None,
                 strict: bool = False) -> int:
    """Commit one shard's part and failures (or only record the failures of a shard that could not be read).
    Returns how many rows were refused (keys the table holds: failures of stage `duplicate_key`)."""
    if done is not None:
        done.synchronize()
    failures = [f.as_row() for f in acc.failures]
    if not readable:
        table.writer.record_failures(shard, failures)
        return 0
    if table.writer.is_done(shard):   # committed meanwhile (the same shard under another path): keep that part
        table.done.add(shard)
        return 0
    rows, vectors = acc.rows, stacked(acc.vectors, table.dim)
    refused: list[Failure] = []
    if table.unique_keys:
        keep, refused = table.unique_rows(shard, rows)
        if refused:
            if strict:
                raise SampleError(refused[0])
            rows, vectors = [rows[i] for i in keep], vectors[keep]
    table.writer.commit(shard, rows, vectors, failures + [f.as_row() for f in refused])
    table.done.add(shard)
    return len(refused)


def stacked(vectors: list, dim: int) -> np.ndarray:
    """One float32 array of a shard's embeddings; torch tensors are copied back once, here."""
    if not vectors:
        return np.zeros((0, dim), np.float32)
    if isinstance(vectors[0], torch.Tensor):
        return torch.cat(vectors).cpu().numpy()
    return np.concatenate([np.asarray(v, np.float32).reshape(-1, dim) for v in vectors])
