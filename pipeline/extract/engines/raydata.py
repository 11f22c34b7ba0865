"""`artlens extract --engine ray [--address ADDR]`: the same extraction on Ray Data.

    shard list ──(CPU tasks: read + decode + geometry, `loader.shard_batches`)──▶ per-shard batches of uint8 pixels
               ──(actor pool: the model, one GPU per actor on a cluster)──▶ embeddings
               ──(driver: the commit loop every engine shares, commit.py)──▶ one committed part per shard

Each Ray row is one batch of one shard (rows of a shard never mix with another's), numbered, with the
shard's last batch flagged; rows arrive in any order, so the driver holds a shard's rows until it has them
all (`in_shard_order`) and then feeds them, in order, to the commit loop. A round is one Ray Data pipeline
over the shards still to do; the retrier (retry.py) runs another over those it did not commit (a shard that
could not be read, a pipeline that raised). Committed shards are skipped, so a killed run resumes. Without
`address` a local Ray instance is started (`ray.init()`); with one, the driver joins that cluster
(docs/scaling.md says what to request per actor).
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Iterable, Iterator

import numpy as np

from artlens.pipeline.extract.commit import ShardCommits, committed_among
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.extract.loader import DecodeOptions, ShardBatch, shard_batches
from artlens.pipeline.extract.retry import retry_rounds
from artlens.pipeline.extract.run import Target, open_targets, pending_shards, selected_shards
from artlens.pipeline.extract.summary import ExtractSummary
from artlens.pipeline.failures import Failure
from artlens.pipeline.models.load import device_default, load_model


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


def in_shard_order(rows: Iterable[dict]) -> Iterator[dict]:
    """Ray rows, batches of shards in any order → every shard's rows in batch order, once it has them all."""
    held: dict[str, dict[int, dict]] = {}
    counts: dict[str, int] = {}           # a shard's number of batches, known once its last one arrived
    for row in rows:
        shard = held.setdefault(row["shard"], {})
        shard[int(row["index"])] = row
        if row["last"]:
            counts[row["shard"]] = int(row["index"]) + 1
        if len(shard) == counts.get(row["shard"]):
            del held[row["shard"]], counts[row["shard"]]
            yield from (shard[i] for i in range(len(shard)))


def as_batch(row: dict, dims: list[int]) -> tuple[ShardBatch, list[np.ndarray]]:
    """A Ray row → the batch the commit loop takes, and its embeddings for each table."""
    batch = ShardBatch(shard=row["shard"], rows=json.loads(row["rows"]),
                       failures=[Failure(**f) for f in json.loads(row["failures"])],
                       last=bool(row["last"]), commit=bool(row["commit"]))
    vectors = [np.asarray(row[f"embedding{t}"], dtype=np.float32).reshape(-1, dim) for t, dim in enumerate(dims)]
    return batch, vectors


def run_with_ray(cfg: ExtractConfig) -> ExtractSummary:
    import ray

    urls = selected_shards(cfg)
    targets, plans = open_targets(cfg, None)  # the driver validates the tables (and drops them with overwrite)
    todo = pending_shards(urls, targets)
    summary = ExtractSummary(table=", ".join(t.table for t in targets), shards=len(urls),
                             shards_skipped=len(urls) - len(todo), decode="Pillow in Ray CPU tasks")
    start = time.perf_counter()
    tables = [t.out for t in targets]
    if todo:
        if not ray.is_initialized():
            ray.init(address=cfg.address, include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = cfg.progress
        logging.getLogger("ray.data").setLevel(logging.INFO if cfg.progress else logging.WARNING)
        retry_rounds(todo, RayRound(ray, cfg, targets, plans, summary), partial(committed_among, tables),
                     cfg.retries, summary)
    summary.elapsed_s = time.perf_counter() - start
    summary.recount((t.writer for t in tables), urls, cfg.store)
    return summary


@dataclass
class RayRound:
    """One round on Ray: a Ray Data pipeline over the given shards, its rows committed by the driver."""
    ray: object
    cfg: ExtractConfig
    targets: list[Target]
    plans: list
    summary: ExtractSummary

    def __call__(self, shards: list[str]) -> None:
        dims = [t.loaded.dim for t in self.targets]
        with ShardCommits([t.out for t in self.targets], self.summary, self.cfg.strict) as loop:
            for row in in_shard_order(self.dataset(shards).iter_rows()):
                batch, vectors = as_batch(row, dims)
                loop.add(batch, vectors.__getitem__)

    def dataset(self, shards: list[str]):
        device = self.targets[0].loaded.device
        opts = DecodeOptions(max_pixels=self.cfg.max_pixels, max_member_bytes=self.cfg.max_member_bytes,
                             batch_size=self.cfg.batch_size or device_default(device, "batch_size"))
        actors = self.cfg.actors or (int(self.ray.available_resources().get("GPU", 0)) or 1)
        specs = [spec for _, spec in self.cfg.targets()]
        ds = self.ray.data.from_items([{"shard": u} for u in shards], override_num_blocks=len(shards))
        ds = ds.flat_map(_decode, fn_kwargs={"plans": self.plans, "opts": opts})
        return ds.map_batches(_Embed, fn_constructor_args=(specs, [t.plan for t in self.targets]), batch_size=1,
                              concurrency=actors, num_gpus=1 if device.type == "cuda" else 0)
