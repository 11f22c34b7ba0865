"""`artlens extract --devices all|0,1,...`: one process per device, each extracting its share of the shards.

Shard i goes to device i mod N (of the full, ordered shard list, so the split does not depend on what is
already done). Every process runs the ordinary extractor on its share, so each shard is committed by the
same atomic per-shard protocol, and the rows are those of a one-process run. Processes are spawned (CUDA
cannot be forked). When a process fails, the shards it left uncommitted are shared out again over the
devices, up to `retries` rounds; a killed run resumes like any extraction (committed shards are skipped).
The parent shows one progress bar (committed parts) and recounts the tables at the end.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from artlens.store.catalog import Catalog
from artlens.store.layout import StoreLayout
from artlens.store.remote import refresh
from artlens.store.writer import TableWriter

from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.extract.run import ExtractSummary, run_extract
from artlens.pipeline.shards.spec import expand_shards


class DevicesError(ValueError):
    pass


def parse_devices(text: str, cuda_count: Callable[[], int] | None = None) -> list[str]:
    """'all' → every CUDA device; '0,1' → cuda:0, cuda:1; names (cpu, cuda:1) are kept as they are."""
    if text == "all":
        import torch
        count = (cuda_count or torch.cuda.device_count)()
        if count == 0:
            raise DevicesError("--devices all: torch sees no CUDA device")
        return [f"cuda:{i}" for i in range(count)]
    devices = [d.strip() for d in text.split(",") if d.strip()]
    if not devices:
        raise DevicesError("--devices names no device")
    return [f"cuda:{d}" if d.isdigit() else d for d in devices]


def assign(urls: list[str], devices: list[str]) -> dict[str, list[str]]:
    """Shard i → device i mod N (a device listed twice gets two processes)."""
    return {f"{i}:{d}": urls[i::len(devices)] for i, d in enumerate(devices)}


def _child(cfg: ExtractConfig, out: str) -> None:
    summary = run_extract(cfg)
    Path(out).write_text(json.dumps(summary.__dict__))


@dataclass
class DevicesSummary(ExtractSummary):
    devices: list[str] = field(default_factory=list)
    retried_shards: int = 0
    failed_processes: int = 0

    def lines(self) -> list[str]:
        out = super().lines()
        out.insert(1, f"devices: {', '.join(self.devices)}; {self.failed_processes} process(es) failed, "
                      f"{self.retried_shards} shard(s) retried")
        return out


def _done(cfg: ExtractConfig, urls: list[str], fresh: bool = True) -> set[str]:
    """Shards every table holds. `fresh` pulls a store in a bucket first, to see the parts the device
    processes pushed (the progress bar polls without it: pulling a whole store twice a second is too much)."""
    if fresh:
        refresh(cfg.store)
    layout = StoreLayout.at(cfg.store)
    tables = [t for t, _ in cfg.targets()]
    return {u for u in urls if all(layout.part_path(t, u).exists() for t in tables)}


def run_on_devices(cfg: ExtractConfig, devices: list[str], retries: int = 1,
                   child: Callable[[ExtractConfig, str], None] = _child) -> DevicesSummary:
    urls = expand_shards(cfg.shards)
    if cfg.overwrite:  # drop once here, not in every process
        for table, _ in cfg.targets():
            if _exists(cfg.store, table):
                TableWriter.reopen(cfg.store, table).drop(table)
    summary = DevicesSummary(table=", ".join(t for t, _ in cfg.targets()), shards=len(urls), devices=devices)
    done = _done(cfg, urls)
    summary.shards_skipped = len(done)
    context = multiprocessing.get_context("spawn")
    # The machine's cores are shared by the device processes: each gets its part of the decode workers.
    cores = os.cpu_count() or 2
    workers = cfg.workers if cfg.workers is not None else max(1, (cores - 2 * len(devices)) // len(devices))
    start, todo, rounds = time.perf_counter(), [u for u in urls if u not in done], 0
    bar = tqdm(total=len(urls), initial=summary.shards_skipped, unit="shard",
               desc=f"extract on {len(devices)} devices", disable=not cfg.progress)
    with bar, tempfile.TemporaryDirectory(prefix="artlens-devices-") as tmp:
        scratch = Path(tmp)
        while todo and rounds <= retries:
            shares = assign(todo, devices)
            procs = {}
            for name, share in shares.items():
                if not share:
                    continue
                device = name.split(":", 1)[1]
                sub = replace(cfg, only=tuple(share), overwrite=False, progress=False, workers=workers,
                              model=replace(cfg.model, device=device),
                              models=tuple(replace(m, device=device) for m in cfg.models))
                out = str(scratch / f"{rounds}-{name.replace(':', '_')}.json")
                proc = context.Process(target=child, args=(sub, out), name=f"artlens-extract-{name}")
                proc.start()
                procs[name] = (proc, out)
            while any(p.is_alive() for p, _ in procs.values()):
                time.sleep(0.5)
                bar.n = len(_done(cfg, urls, fresh=False))
                bar.refresh()
            for proc, out in procs.values():
                proc.join()
                if proc.exitcode == 0 and Path(out).exists():
                    _add(summary, json.loads(Path(out).read_text()))
                else:
                    summary.failed_processes += 1
            left = [u for u in todo if u not in _done(cfg, urls)]
            summary.retried_shards += len(left) if rounds < retries else 0
            todo, rounds = left, rounds + 1
        bar.n = len(_done(cfg, urls))
        bar.refresh()
    summary.elapsed_s = time.perf_counter() - start
    summary.shards_unreadable += len(todo)  # still not committed after every retry
    for table, _ in cfg.targets():
        if _exists(cfg.store, table):
            entry = TableWriter.reopen(cfg.store, table).finish()
            summary.tables_rows[table] = entry.rows
            summary.table_rows, summary.schema_conflicts = entry.rows, entry.conflicts()
    return summary


def _exists(root: str, table: str) -> bool:
    path = StoreLayout.at(root).catalog_path
    return path.exists() and Catalog(path).get(table) is not None


def _add(total: DevicesSummary, part: dict) -> None:
    for key in ("shards_committed", "shards_unreadable", "images", "failures", "gpu_decoded"):
        setattr(total, key, getattr(total, key) + part.get(key, 0))
    total.decode = part.get("decode", total.decode)
