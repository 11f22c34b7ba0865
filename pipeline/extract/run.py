"""`artlens extract`: shards → open_clip image embeddings → the store, one committed part per shard."""
from __future__ import annotations

import contextlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter

from artlens import __version__
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.failures import Failure, SampleError
from artlens.pipeline.extract.loader import DecodeOptions, ShardBatch, batch_loader
from artlens.pipeline.imaging.gpu.stage import DeviceStage, claim_hardware_queues, in_order, kept_stream, used_here, warn_if_few_queues
from artlens.pipeline.imaging.gpu.decoders import gpu_decode_available, jpeg_decoder
from artlens.pipeline.models.load import LoadedModel, device_default, load_model
from artlens.pipeline.shards.spec import expand_shards

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
    tables_rows: dict = field(default_factory=dict)
    gpu_decoded: int = 0
    decode: str = ""
    startup_s: float = 0.0       # from the start until the first batch arrived (worker spawn, first decode)

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
            f"decode: {self.decode}; {self.gpu_decoded} of {self.images} images decoded on the GPU"
            if self.gpu_decoded else f"decode: {self.decode}",
        ]
        out += [f"table {t} now holds {rows} rows" for t, rows in self.tables_rows.items()]
        out += [f"column {c!r}: {why}" for c, why in sorted(self.schema_conflicts.items())]
        if self.failures:
            out.append("failed samples: artlens sql --store STORE \"SELECT * FROM failures\"")
        return out


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


@dataclass
class _Target:
    """One model writing one table; `plan` indexes the batch's pixel tensors it reads."""
    table: str
    loaded: LoadedModel
    writer: TableWriter
    plan: int
    done: set[str]
    pending: dict[str, "_Pending"] = field(default_factory=dict)  # shard → rows, device embeddings, failures


def decode_device(cfg: ExtractConfig, models: list[LoadedModel]) -> str | None:
    """The device nvJPEG decodes on, or None for Pillow. `auto` means the GPU whenever the model runs on
    one and its preprocessing can move there; `gpu` insists and says why it cannot."""
    device = models[0].device
    if cfg.decode == "cpu":
        return None
    reason = ("the model runs on the CPU" if not gpu_decode_available(device) else
              "a model's preprocessing has steps artlens cannot run on tensors"
              if not all(m.plan.gpu_ok for m in models) else None)
    if reason and cfg.decode == "gpu":
        raise ValueError(f"--decode gpu is not possible: {reason}; use --decode cpu")
    return None if reason else str(device)


def _targets(cfg: ExtractConfig, loaded) -> tuple[list[_Target], list]:
    pairs = cfg.targets()
    given = loaded if isinstance(loaded, (list, tuple)) else [loaded] if loaded is not None else []
    models = list(given) or [load_model(spec) for _, spec in pairs]
    if len(models) != len(pairs):
        raise ValueError(f"{len(pairs)} tables but {len(models)} loaded models")
    if len({m.device for m in models}) > 1:
        raise ValueError("--models must all run on one device")
    plans, keys, targets = [], [], []
    for (table, _), model in zip(pairs, models):
        key = model.plan.key()
        if key not in keys:
            keys.append(key)
            plans.append(model.plan)
        writer = TableWriter(cfg.store, table_entry(replace(cfg, table=table), model), overwrite=cfg.overwrite)
        targets.append(_Target(table, model, writer, keys.index(key), set()))
    return targets, plans


def workers_for(cfg: ExtractConfig, gpu_decode: bool = False) -> int:
    """Default workers: every core but the main process's (two with GPU decoding: its threads feed the
    GPU decoder). With GPU decoding the workers read shards, check headers and decode the non-JPEGs; on an
    H100, 3 to 14 workers gave ViT-B-32 rates with no trend beyond the run-to-run noise
    (docs/performance.md)."""
    if cfg.workers is not None:
        return cfg.workers
    cores = os.cpu_count() or 2
    return max(1, cores - (2 if gpu_decode else 1))


def prepared_batches(cfg: ExtractConfig, shards: list[str], plans: list, device: torch.device,
                     gpu: str | None) -> Iterator[ShardBatch]:
    """Shards → batches whose pixels are ready for the models: decoded by the workers (Pillow) and, with
    `gpu`, by the device stage (nvJPEG), with reading, decoding and the consumer overlapping."""
    batch_size = cfg.batch_size or device_default(device, "batch_size")
    opts = DecodeOptions(max_pixels=cfg.max_pixels, batch_size=batch_size, jpeg_to_device=gpu is not None)
    loader = batch_loader(shards, plans, opts, workers_for(cfg, gpu is not None), pin_memory=device.type == "cuda")
    stage = DeviceStage(plans, torch.device(gpu), cfg.max_pixels, cfg.jpeg_decoder) if gpu else None
    return in_order(loader, stage, cfg.decode_threads)


def run_extract(cfg: ExtractConfig, loaded: LoadedModel | list[LoadedModel] | None = None) -> ExtractSummary:
    urls = expand_shards(cfg.shards)
    if cfg.only:
        wanted = set(cfg.only)
        urls = [u for u in urls if u in wanted]
    claim_hardware_queues()  # before the models are loaded: CUDA reads it when it starts
    targets, plans = _targets(cfg, loaded)
    models = [t.loaded for t in targets]
    todo = pending_shards(urls, targets)
    summary = ExtractSummary(table=", ".join(t.table for t in targets), shards=len(urls),
                             shards_skipped=len(urls) - len(todo))
    gpu = decode_device(cfg, models)
    if gpu:
        warn_if_few_queues()
    summary.decode = (f"{jpeg_decoder(torch.device(gpu), cfg.jpeg_decoder).name} on {gpu} for JPEGs, Pillow for "
                      "the rest" if gpu else "Pillow (CPU)")
    start = time.perf_counter()
    if todo:
        bar = tqdm(total=expected_images(todo), unit="img", desc=f"extract {summary.table}",
                   disable=not cfg.progress, smoothing=0.1)
        with bar, Committer() as committer, model_stream(models[0].device):
            for batch in prepared_batches(cfg, todo, plans, models[0].device, gpu):
                summary.startup_s = summary.startup_s or time.perf_counter() - start
                _consume(batch, targets, committer, summary, cfg.strict)
                bar.update(len(batch.rows))
                bar.set_postfix(failed=summary.failures, shards=f"{summary.shards_committed}/{len(todo)}")
    summary.elapsed_s = time.perf_counter() - start
    finish_tables(targets, summary)
    return summary


def pending_shards(urls: list[str], targets: list[_Target]) -> list[str]:
    """Record in each target the shards its table already holds; the shards some table still needs."""
    for t in targets:
        t.done = {u for u in urls if t.writer.is_done(u)}
    return [u for u in urls if any(u not in t.done for t in targets)]


def finish_tables(targets: list[_Target], summary: ExtractSummary) -> None:
    """Recount every table from its committed parts into the summary."""
    for t in targets:
        entry = t.writer.finish()
        summary.table_rows, summary.schema_conflicts = entry.rows, entry.conflicts()
        summary.tables_rows[t.table] = entry.rows


def _consume(batch: ShardBatch, targets: list[_Target], committer: "Committer", summary: ExtractSummary,
             strict: bool) -> None:
    if strict and batch.failures:
        raise SampleError(batch.failures[0])
    summary.images += len(batch.rows)
    summary.gpu_decoded += batch.gpu_decoded
    summary.failures += len(batch.failures)
    for t in targets:
        if batch.shard in t.done:
            continue
        acc = t.pending.setdefault(batch.shard, _Pending())
        if batch.pixels is not None:
            used_here(batch.pixels)
            acc.rows.extend(batch.rows)
            acc.vectors.append(t.loaded.embed_on_device(batch.pixels[t.plan]))  # no sync: the GPU runs ahead
        acc.failures.extend(batch.failures)
        if batch.last:
            committer.submit(t, batch.shard, t.pending.pop(batch.shard), batch.commit)
    if batch.last:
        summary.shards_committed += int(batch.commit)
        summary.shards_unreadable += int(not batch.commit)


def model_stream(device: torch.device):
    """Run the models on their own CUDA stream: work on the legacy default stream would wait for, and
    hold up, every other stream (the decode threads'). A no-op off CUDA."""
    return torch.cuda.stream(kept_stream(device, "model")) if device.type == "cuda" else contextlib.nullcontext()


@dataclass
class _Pending:
    rows: list[dict] = field(default_factory=list)
    vectors: list = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)


class Committer:
    """Writes finished shards on one background thread, so Parquet encoding, fsync and catalog updates
    overlap the next batches on the GPU. Errors surface on the next submit and at exit; exiting waits
    for every commit (a shard counts as done only once its part is renamed into place)."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="artlens-commit")
        self.futures: list = []

    def __enter__(self) -> "Committer":
        return self

    def submit(self, target: _Target, shard: str, acc: _Pending, commit: bool) -> None:
        for f in [f for f in self.futures if f.done()]:
            f.result()
            self.futures.remove(f)
        done = None
        if acc.vectors and acc.vectors[0].is_cuda:  # the commit thread waits for the model's work, not longer
            done = torch.cuda.Event()
            done.record()
        self.futures.append(self.pool.submit(_commit, target, shard, acc, commit, done))

    def __exit__(self, *exc) -> None:
        try:
            for f in self.futures:
                f.result()
        finally:
            self.pool.shutdown(wait=True)


def _commit(target: _Target, shard: str, acc: _Pending, commit: bool, done=None) -> None:
    if done is not None:
        done.synchronize()
    failures = [f.as_row() for f in acc.failures]
    if not commit:
        target.writer.record_failures(shard, failures)
        return
    # One copy back per shard, waited for here on the commit thread, not by the loop feeding the GPU.
    array = (torch.cat(acc.vectors).cpu().numpy() if acc.vectors
             else np.zeros((0, target.loaded.dim), np.float32))
    target.writer.commit(shard, acc.rows, array, failures)
