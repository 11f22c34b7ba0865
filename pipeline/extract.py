"""`artlens extract`: shards → open_clip image embeddings → the store, one committed part per shard."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from store.catalog import TableEntry
from store.writer import TableWriter

from . import __version__
from .config import ExtractConfig
from .failures import Failure, SampleError
from .loader import DecodeOptions, ShardBatch, batch_loader
from .model import LoadedModel, load_model
from .shardspec import expand_shards

EXIT_OK, EXIT_SOME_FAILED = 0, 3


@dataclass
class ExtractSummary:
    table: str
    shards: int = 0
    shards_skipped: int = 0
    shards_committed: int = 0
    shards_unreadable: int = 0
    images: int = 0
    failures: int = 0
    elapsed_s: float = 0.0
    table_rows: int = 0
    schema_conflicts: dict = field(default_factory=dict)

    @property
    def images_per_s(self) -> float:
        return self.images / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return EXIT_SOME_FAILED if (self.failures or self.shards_unreadable) else EXIT_OK

    def lines(self) -> list[str]:
        out = [
            f"table {self.table}: {self.images} images embedded, {self.failures} failed, "
            f"{self.images_per_s:.1f} img/s, {self.elapsed_s:.1f} s elapsed",
            f"shards: {self.shards} total, {self.shards_committed} committed now, "
            f"{self.shards_skipped} already done (resumed), {self.shards_unreadable} unreadable (retried next run)",
            f"table now holds {self.table_rows} rows",
        ]
        out += [f"column {c!r}: {why}" for c, why in sorted(self.schema_conflicts.items())]
        if self.failures:
            out.append("failed samples: artlens sql --store STORE \"SELECT * FROM failures\"")
        return out


@dataclass
class _Pending:
    rows: list[dict] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


def table_entry(cfg: ExtractConfig, loaded: LoadedModel) -> TableEntry:
    return TableEntry(
        name=cfg.table, kind="image", model=loaded.name, model_ref=loaded.ref, pretrained=loaded.weights.label,
        checkpoint_sha256=loaded.weights.sha256, preprocess=loaded.preprocess_description(),
        dim=loaded.dim, dtype="float32", source=cfg.shards, artlens_version=__version__,
    )


def expected_images(urls: list[str]) -> int | None:
    """Sum of per-shard sample counts from the shards' manifest.json, when there is one."""
    counts: dict[str, int] = {}
    for directory in {str(Path(u).parent) for u in urls if "://" not in u}:
        manifest = Path(directory) / "manifest.json"
        if manifest.is_file():
            for shard in json.loads(manifest.read_text()).get("shards", []):
                counts[str(Path(directory) / shard["name"])] = shard["samples"]
    return sum(counts[u] for u in urls if u in counts) if counts else None


def run_extract(cfg: ExtractConfig, loaded: LoadedModel | None = None) -> ExtractSummary:
    urls = expand_shards(cfg.shards)
    loaded = loaded or load_model(cfg.model)
    writer = TableWriter(cfg.store, table_entry(cfg, loaded), overwrite=cfg.overwrite)
    todo = [u for u in urls if not writer.is_done(u)]
    summary = ExtractSummary(table=cfg.table, shards=len(urls), shards_skipped=len(urls) - len(todo))
    start = time.perf_counter()
    if todo:
        opts = DecodeOptions(max_pixels=cfg.max_pixels, batch_size=cfg.batch_size)
        loader = batch_loader(todo, loaded.preprocess, opts, cfg.workers, pin_memory=loaded.device.type == "cuda")
        bar = tqdm(total=expected_images(todo), unit="img", desc=f"extract {cfg.table}",
                   disable=not cfg.progress, smoothing=0.1)
        pending: dict[str, _Pending] = {}
        with bar:
            for batch in loader:
                _consume(batch, pending, loaded, writer, summary, cfg.strict)
                bar.update(len(batch.rows))
                bar.set_postfix(failed=summary.failures, shards=f"{summary.shards_committed}/{len(todo)}")
    summary.elapsed_s = time.perf_counter() - start
    entry = writer.finish()
    summary.table_rows, summary.schema_conflicts = entry.rows, entry.conflicts()
    return summary


def _consume(batch: ShardBatch, pending: dict[str, _Pending], loaded: LoadedModel, writer: TableWriter,
             summary: ExtractSummary, strict: bool) -> None:
    if strict and batch.failures:
        raise SampleError(batch.failures[0])
    acc = pending.setdefault(batch.shard, _Pending())
    if batch.pixels is not None:
        acc.rows.extend(batch.rows)
        acc.vectors.append(loaded.embed(batch.pixels))
    acc.failures.extend(batch.failures)
    summary.images += len(batch.rows)
    summary.failures += len(batch.failures)
    if not batch.last:
        return
    del pending[batch.shard]
    if not batch.commit:
        summary.shards_unreadable += 1
        writer.record_failures(batch.shard, [f.as_row() for f in acc.failures])
        return
    vectors = np.concatenate(acc.vectors) if acc.vectors else np.zeros((0, loaded.dim), np.float32)
    writer.commit(batch.shard, acc.rows, vectors, [f.as_row() for f in acc.failures])
    summary.shards_committed += 1
