"""`artlens extract --engine ray [--address ADDR]`: the same extraction on Ray Data.

    shard list ──(CPU tasks: read + decode + geometry, `loader.shard_batches`)──▶ per-shard batches of uint8 pixels
               ──(actor pool: the model, one GPU per actor on a cluster)──▶ embeddings
               ──(driver: TableWriter)──▶ one committed part per shard, the same protocol as the local engine

Each Ray row is one batch of one shard (rows of a shard never mix with another's), numbered, with the
shard's last batch flagged and carrying the count; the driver commits a shard once it holds all its
batches, whatever order they arrive in. Committed shards are skipped, so a killed run resumes. Without
`--address` a local Ray instance is started (`ray.init()`); with one, the driver joins that cluster
(docs/scaling.md says what to request per actor).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.extract.run import ExtractSummary, _targets, decode_device, finish_tables, pending_shards
from artlens.pipeline.failures import Failure
from artlens.pipeline.extract.loader import DecodeOptions, shard_batches
from artlens.pipeline.models.load import device_default, load_model
from artlens.pipeline.shards.spec import expand_shards


def _decode(item: dict, plans: list, opts: DecodeOptions) -> list[dict]:
    """CPU task: one shard → its batches as Ray rows (pixels as uint8 arrays, rows and failures as JSON)."""
    out = []
    for index, batch in enumerate(shard_batches(item["shard"], plans, opts)):
        pixels = [p.numpy() for p in batch.pixels] if batch.pixels is not None else []
        out.append({"shard": batch.shard, "index": index, "last": batch.last, "commit": batch.commit,
                    "rows": json.dumps(batch.rows, default=str),
                    "failures": json.dumps([f.as_row() for f in batch.failures]),
                    **{f"pixels{k}": p for k, p in enumerate(pixels)}, "n_plans": len(pixels)})
    return out


class _Embed:
    """Actor: the models, loaded once per actor; each input row is one batch of one shard."""

    def __init__(self, specs: list, plan_of: list[int]):
        import torch
        self.torch = torch
        self.models = [load_model(spec) for spec in specs]
        self.plan_of = plan_of

    def __call__(self, rows: dict) -> dict:
        out = {k: list(v) for k, v in rows.items() if not k.startswith("pixels")}
        for t, model in enumerate(self.models):
            vectors = []
            for i in range(len(rows["shard"])):
                if rows["n_plans"][i] == 0:
                    vectors.append(np.zeros((0, model.dim), np.float32))
                    continue
                pixels = self.torch.from_numpy(np.asarray(rows[f"pixels{self.plan_of[t]}"][i]))
                vectors.append(model.embed(pixels))
            out[f"embedding{t}"] = vectors
        return out


@dataclass
class _Shard:
    batches: dict[int, dict] = field(default_factory=dict)
    count: int | None = None     # number of batches, known once the last one arrived


def run_with_ray(cfg: ExtractConfig, address: str | None = None, actors: int | None = None) -> ExtractSummary:
    import ray

    urls = expand_shards(cfg.shards)
    if cfg.only:
        urls = [u for u in urls if u in set(cfg.only)]
    targets, plans = _targets(cfg, None)  # the driver validates the tables (and drops them with --overwrite)
    if decode_device(cfg, [t.loaded for t in targets]) is not None and cfg.decode == "gpu":
        raise ValueError("--engine ray decodes on CPU tasks; use --decode cpu or auto")
    todo = pending_shards(urls, targets)
    summary = ExtractSummary(table=", ".join(t.table for t in targets), shards=len(urls),
                             shards_skipped=len(urls) - len(todo), decode="Pillow in Ray CPU tasks")
    start = time.perf_counter()
    if todo:
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = cfg.progress
        logging.getLogger("ray.data").setLevel(logging.INFO if cfg.progress else logging.WARNING)
        device = targets[0].loaded.device
        batch_size = cfg.batch_size or device_default(device, "batch_size")
        opts = DecodeOptions(max_pixels=cfg.max_pixels, batch_size=batch_size)
        use_gpu = device.type == "cuda"
        specs = [spec for _, spec in cfg.targets()]
        ds = ray.data.from_items([{"shard": u} for u in todo], override_num_blocks=len(todo))
        ds = ds.flat_map(_decode, fn_kwargs={"plans": plans, "opts": opts})
        ds = ds.map_batches(_Embed, fn_constructor_args=(specs, [t.plan for t in targets]), batch_size=1,
                            concurrency=actors or (int(ray.available_resources().get("GPU", 0)) or 1),
                            num_gpus=1 if use_gpu else 0)
        pending: dict[str, _Shard] = {}
        for row in ds.iter_rows():
            shard = pending.setdefault(row["shard"], _Shard())
            shard.batches[int(row["index"])] = row
            if row["last"]:
                shard.count = int(row["index"]) + 1
            if shard.count is not None and len(shard.batches) == shard.count:
                _commit(pending.pop(row["shard"]), row["shard"], targets, summary)
    summary.elapsed_s = time.perf_counter() - start
    finish_tables(targets, summary)
    return summary


def _commit(shard: _Shard, url: str, targets: list, summary: ExtractSummary) -> None:
    batches = [shard.batches[i] for i in range(shard.count)]
    rows = [r for b in batches for r in json.loads(b["rows"])]
    failures = [Failure(**f).as_row() for b in batches for f in json.loads(b["failures"])]
    commit = all(bool(b["commit"]) for b in batches)
    summary.images += len(rows)
    summary.failures += len(failures)
    for t, target in enumerate(targets):
        if url in target.done:
            continue
        if not commit:
            target.writer.record_failures(url, failures)
            continue
        vectors = [np.asarray(b[f"embedding{t}"], dtype=np.float32).reshape(-1, target.loaded.dim) for b in batches]
        vectors = [v for v in vectors if len(v)]
        array = np.concatenate(vectors) if vectors else np.zeros((0, target.loaded.dim), np.float32)
        target.writer.commit(url, rows, array, failures)
    summary.shards_committed += int(commit)
    summary.shards_unreadable += int(not commit)

