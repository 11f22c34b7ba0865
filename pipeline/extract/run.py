"""`artlens extract`, the local engine: shards → open_clip image embeddings → the store, one committed part per shard.

One process: DataLoader workers read and decode (loader.py), the device stage decodes JPEGs on the GPU when it
can (pipeline/imaging/gpu/stage.py), the models embed on their own CUDA stream, and the commit loop every
engine shares (commit.py) writes each finished shard on a background thread. The retrier (retry.py) attempts
the shards a round did not commit again. engines/ runs the same extraction on several devices or on Ray.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable, Iterator

import torch
from tqdm import tqdm

from artlens import startup
from artlens.errors import UserError
from artlens.store.catalog import TableEntry
from artlens.store.layout import shard_id
from artlens.store.writer import TableWriter

from artlens import __version__
from artlens.pipeline.extract.commit import OutputTable, ShardCommits, committed_among
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.extract.loader import DecodeOptions, ShardBatch, batch_loader
from artlens.pipeline.extract.retry import retry_rounds
from artlens.pipeline.extract.summary import ExtractSummary, process_age
from artlens.pipeline.imaging.gpu.stage import DeviceStage, claim_hardware_queues, in_order, kept_stream, used_here, warn_if_few_queues
from artlens.pipeline.imaging.gpu.decoders import gpu_decode_available, jpeg_decoder
from artlens.pipeline.models.load import LoadedModel, device_default, load_model
from artlens.pipeline.shards.folder import FolderSource
from artlens.pipeline.shards.spec import expand_shards


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
class Target:
    """One model writing one table; `plan` indexes the batch's pixel tensors it reads."""
    loaded: LoadedModel
    plan: int
    out: OutputTable

    @property
    def table(self) -> str:
        return self.out.name


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
        raise UserError(f"`decode` gpu is not possible: {reason}; use `decode` cpu", argument="decode")
    return None if reason else str(device)


def open_targets(cfg: ExtractConfig, loaded=None) -> tuple[list[Target], list]:
    """The (model, table) targets of the config, their writers opened (validating the tables, dropping them
    with `overwrite`), and the distinct preprocessing plans the batches carry pixels for. `loaded`: models
    already loaded, one per target (else they are loaded here)."""
    pairs = cfg.targets()
    given = loaded if isinstance(loaded, (list, tuple)) else [loaded] if loaded is not None else []
    models = list(given) or [load_model(spec) for _, spec in pairs]
    if len(models) != len(pairs):
        raise UserError(f"{len(pairs)} tables but {len(models)} loaded models")
    if len({m.device for m in models}) > 1:
        raise UserError("`models` must all run on one device", argument="models")
    plans, keys, targets = [], [], []
    for (table, _), model in zip(pairs, models):
        key = model.plan.key()
        if key not in keys:
            keys.append(key)
            plans.append(model.plan)
        writer = TableWriter(cfg.store, table_entry(replace(cfg, table=table), model), overwrite=cfg.overwrite)
        targets.append(Target(model, keys.index(key), OutputTable(writer, model.dim, unique_keys=True)))
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
    opts = DecodeOptions(max_pixels=cfg.max_pixels, batch_size=batch_size, jpeg_to_device=gpu is not None,
                         max_member_bytes=cfg.max_member_bytes, folder=cfg.folder_source())
    loader = batch_loader(shards, plans, opts, workers_for(cfg, gpu is not None), pin_memory=device.type == "cuda")
    stage = DeviceStage(plans, torch.device(gpu), cfg.max_pixels, cfg.jpeg_decoder) if gpu else None
    batches = iter(loader)  # the workers start reading now, before a thread of ours uses CUDA beside them
    if stage is not None:
        stage.warm_up()  # the decoder and resize kernel start while the workers read the first shard
    return in_order(batches, stage, cfg.decode_threads)


def selected_shards(cfg: ExtractConfig) -> list[str]:
    """The shard URLs of the config, in order (a folder of images: its virtual shards), restricted to `only`
    when it is set."""
    folder = cfg.folder_source()
    urls = folder.shards() if folder is not None else expand_shards(cfg.shards)
    if cfg.only:
        wanted = set(cfg.only)
        urls = [u for u in urls if u in wanted]
    return urls


def distinct_shards(urls: list[str]) -> list[str]:
    """The first URL of each shard: one shard reached by two paths (a copy, a symlink) is one shard
    (store/layout.py `shard_id`)."""
    seen: set[str] = set()
    return [u for u in urls if not (shard_id(u) in seen or seen.add(shard_id(u)))]


def pending_shards(urls: list[str], targets: list[Target]) -> list[str]:
    """Record in each target the shards its table already holds (a readable part under the shard's id: a
    shard moved since, or reached through a symlink, is held); the shards some table still needs, each once."""
    for t in targets:
        t.out.mark_done(urls)
    return [u for u in distinct_shards(urls) if any(u not in t.out.done for t in targets)]


def retire_superseded(folder: FolderSource, todo: list[str], targets: list[Target]) -> int:
    """Remove the earlier versions of a folder's virtual shards that this run redoes: the committed virtual shards
    of the same folder (its path) that are no longer among its current ones and hold keys of a shard to do (a
    file changed, was added or removed), so the redone rows replace theirs instead of becoming `duplicate_key`
    failures. Tar shards and other folders' shards are never removed. Returns the shards removed."""
    current = set(folder.current_ids())
    wanted = {f.key for url in todo for f in folder.files_of(url)}
    removed = 0
    for target in targets:
        held = target.out.writer.committed_keys()
        stale = {shard for key, shard in held.items() if key in wanted and folder.owns(shard)
                 and shard_id(shard) not in current}
        for shard in sorted(stale):
            target.out.writer.remove_shard(shard)
            removed += 1
    return removed


def run_extract(cfg: ExtractConfig, loaded: LoadedModel | list[LoadedModel] | None = None) -> ExtractSummary:
    """Extract in this process (the local engine without `devices`); `loaded`: models already loaded."""
    before_run = process_age() if startup.COMMAND_PROCESS else None  # a Python session's age is not start-up
    entered = time.perf_counter()
    urls = selected_shards(cfg)
    claim_hardware_queues()  # before the models are loaded: CUDA reads it when it starts
    targets, plans = open_targets(cfg, loaded)
    models_s = time.perf_counter() - entered
    todo = pending_shards(urls, targets)
    if (folder := cfg.folder_source()) is not None:
        retire_superseded(folder, todo, targets)
    summary = ExtractSummary(table=", ".join(t.table for t in targets), shards=len(urls),
                             shards_skipped=len(urls) - len(todo))
    gpu = decode_device(cfg, [t.loaded for t in targets])
    if gpu:
        warn_if_few_queues()
    summary.decode = (f"{jpeg_decoder(torch.device(gpu), cfg.jpeg_decoder).name} on {gpu} for JPEGs, Pillow for "
                      "the rest" if gpu else "Pillow (CPU)")
    start = time.perf_counter()
    tables = [t.out for t in targets]
    if todo:
        total = sum(len(folder.files_of(u)) for u in todo) if folder is not None else expected_images(todo)
        bar = tqdm(total=total, unit="img", desc=f"extract {summary.table}",
                   disable=not cfg.progress, smoothing=0.1)
        with bar:
            rounds = LocalRound(cfg, targets, plans, gpu, summary, bar, start)
            retry_rounds(todo, rounds, partial(committed_among, tables), cfg.retries, summary)
    summary.elapsed_s = time.perf_counter() - start
    summary.startup = {"before the run": before_run, "models": models_s, "first batch": summary.startup_s}
    summary.recount((t.writer for t in tables), urls, cfg.store)
    return summary


@dataclass
class LocalRound:
    """One round of the local engine: the given shards through the models into the commit loop."""
    cfg: ExtractConfig
    targets: list[Target]
    plans: list
    gpu: str | None
    summary: ExtractSummary
    bar: tqdm
    start: float

    def __call__(self, shards: list[str]) -> None:
        device = self.targets[0].loaded.device
        with ShardCommits([t.out for t in self.targets], self.summary, self.cfg.strict) as loop, \
                model_stream(device):
            for batch in prepared_batches(self.cfg, shards, self.plans, device, self.gpu):
                self.summary.startup_s = self.summary.startup_s or time.perf_counter() - self.start
                loop.add(batch, on_device(batch, self.targets))
                self.bar.update(len(batch.rows))
                self.bar.set_postfix(failed=self.summary.failures, shards=f"{loop.finished}/{len(shards)}")


def on_device(batch: ShardBatch, targets: list[Target]) -> Callable[[int], torch.Tensor]:
    """The batch's embeddings for target i, left on the device (no sync: the commit thread copies them back)."""
    def embed(i: int) -> torch.Tensor:
        used_here(batch.pixels)
        return targets[i].loaded.embed_on_device(batch.pixels[targets[i].plan])
    return embed


def model_stream(device: torch.device):
    """Run the models on their own CUDA stream: work on the legacy default stream would wait for, and
    hold up, every other stream (the decode threads'). A no-op off CUDA."""
    return torch.cuda.stream(kept_stream(device, "model")) if device.type == "cuda" else contextlib.nullcontext()
