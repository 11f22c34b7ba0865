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
    """A table a run writes: its writer, its embedding width, and the shards it holds (committed)."""
    writer: TableWriter
    dim: int
    done: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return self.writer.entry.name

    def mark_done(self, urls: Iterable[str]) -> None:
        """Record the shards of `urls` the table already holds (committed by an earlier run)."""
        self.done = {u for u in urls if self.writer.is_done(u)}


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
        self.committer = Committer()

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
        for i, table in enumerate(self.tables):
            if batch.shard in table.done:
                continue
            acc = self.pending.setdefault((i, batch.shard), PendingShard())
            if batch.rows:
                acc.rows.extend(batch.rows)
                acc.vectors.append(embed(i))   # local engine: no sync, the GPU runs ahead
            acc.failures.extend(batch.failures)
            if batch.last:
                self.committer.submit(table, batch.shard, self.pending.pop((i, batch.shard)), batch.commit)
        if batch.last:
            self.open.discard(batch.shard)
            self.finished += 1


class Committer:
    """Writes finished shards on one background thread, so Parquet encoding, fsync and catalog updates
    overlap the next batches. Errors surface on the next submit and at `close`; `close` waits for every
    commit."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="artlens-commit")
        self.futures: list = []

    def submit(self, table: OutputTable, shard: str, acc: PendingShard, readable: bool) -> None:
        for f in [f for f in self.futures if f.done()]:
            f.result()
            self.futures.remove(f)
        done = None
        if acc.vectors and isinstance(acc.vectors[0], torch.Tensor) and acc.vectors[0].is_cuda:
            done = torch.cuda.Event()   # the commit thread waits for the model's work, not longer
            done.record()
        self.futures.append(self.pool.submit(commit_shard, table, shard, acc, readable, done))

    def close(self) -> None:
        try:
            for f in self.futures:
                f.result()
        finally:
            self.pool.shutdown(wait=True)


def commit_shard(table: OutputTable, shard: str, acc: PendingShard, readable: bool, done=None) -> None:
    """Commit one shard's part and failures (or only record the failures of a shard that could not be read)."""
    if done is not None:
        done.synchronize()
    failures = [f.as_row() for f in acc.failures]
    if not readable:
        table.writer.record_failures(shard, failures)
        return
    table.writer.commit(shard, acc.rows, stacked(acc.vectors, table.dim), failures)
    table.done.add(shard)


def stacked(vectors: list, dim: int) -> np.ndarray:
    """One float32 array of a shard's embeddings; torch tensors are copied back once, here."""
    if not vectors:
        return np.zeros((0, dim), np.float32)
    if isinstance(vectors[0], torch.Tensor):
        return torch.cat(vectors).cpu().numpy()
    return np.concatenate([np.asarray(v, np.float32).reshape(-1, dim) for v in vectors])
