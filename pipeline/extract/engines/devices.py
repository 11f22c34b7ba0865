"""`artlens extract --devices all|0,1,...` (`ExtractConfig.devices`): one process per device, each extracting
its share of the shards.

Shard i of a round goes to device i mod N, so the first round's split does not depend on what is already
done. Every process runs the local engine on its share (run.py, one round: the parent does the retrying),
so each shard is committed by the same commit loop and atomic per-shard protocol, and the rows are those of
a one-process run. Processes are spawned (CUDA cannot be forked). The retrier (retry.py) makes the rounds:
the shards a round did not commit (unreadable, or left by a process that failed) are shared out again over
the devices. A process's `UserError` or `SampleError` is raised by the parent, unretried, and so is a process's full
disk (as the OSError ENOSPC of the file it could not write). A killed run
resumes like any extraction (committed shards are skipped). The parent shows one progress bar (committed
parts), merges the processes' per-shard counts and recounts the tables at the end.
"""
from __future__ import annotations

import errno
import json
import multiprocessing
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from artlens.errors import UserError, disk_full
from artlens.startup import children_leave_out
from artlens.store.catalog import Catalog
from artlens.store.layout import StoreLayout
from artlens.store.remote import refresh
from artlens.store.writer import TableWriter, committed_part

from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.extract.retry import NOT_RETRIED, retry_rounds
from artlens.pipeline.extract.run import distinct_shards, run_extract, selected_shards
from artlens.pipeline.extract.summary import ExtractSummary
from artlens.pipeline.failures import Failure, SampleError
from artlens.pipeline.models.modelconfig import unused_packages


class DevicesError(UserError):
    pass


def parse_devices(text: str, cuda_count: Callable[[], int] | None = None) -> list[str]:
    """'all' → every CUDA device; '0,1' → cuda:0, cuda:1; names (cpu, cuda:1) are kept as they are."""
    if text == "all":
        import torch
        count = (cuda_count or torch.cuda.device_count)()
        if count == 0:
            raise DevicesError("`devices` all: torch sees no CUDA device", argument="devices")
        return [f"cuda:{i}" for i in range(count)]
    devices = [d.strip() for d in text.split(",") if d.strip()]
    if not devices:
        raise DevicesError("`devices` names no device", argument="devices")
    return [f"cuda:{d}" if d.isdigit() else d for d in devices]


def assign(urls: list[str], devices: list[str]) -> dict[str, list[str]]:
    """Shard i → device i mod N (a device listed twice gets two processes)."""
    return {f"{i}:{d}": urls[i::len(devices)] for i, d in enumerate(devices)}


def _child(cfg: ExtractConfig, out: str) -> None:
    """A device process: its share through the local engine; the summary (or the refusal) to `out`."""
    try:
        summary = run_extract(cfg)
    except NOT_RETRIED as exc:
        Path(out).write_text(json.dumps({"refused": refusal(exc)}))
        raise SystemExit(1)
    except Exception as exc:
        full = disk_full(exc)
        if full is None:
            raise
        try:  # the parent stops the run and says it in one line (another process may have room to report it)
            Path(out).write_text(json.dumps({"refused": {"kind": "disk_full", "path": full.path}}))
        except OSError:
            pass
        raise SystemExit(1) from None
    Path(out).write_text(json.dumps(asdict(summary)))


def refusal(exc: Exception) -> dict:
    """A UserError or SampleError as JSON, for the parent to raise again."""
    if isinstance(exc, SampleError):
        return {"kind": "sample", "failure": exc.failure.as_row()}
    return {"kind": "user", "message": str(exc), "arguments": list(getattr(exc, "arguments", ()))}


REFUSALS: dict[str, Callable[[dict], Exception]] = {
    "sample": lambda r: SampleError(Failure(**r["failure"])),
    "user": lambda r: UserError(r["message"], argument=tuple(r["arguments"])),
    "disk_full": lambda r: OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), r["path"]),
}


def _done(cfg: ExtractConfig, urls: list[str], fresh: bool = True) -> set[str]:
    """Shards every table holds (store/writer.py `committed_part`). `fresh` pulls a store in a bucket first,
    to see the parts the device processes pushed, and reads each part's footer (the progress bar polls
    without either: pulling a whole store twice a second is too much)."""
    if fresh:
        refresh(cfg.store)
    layout = StoreLayout.at(cfg.store)
    tables = [t for t, _ in cfg.targets()]
    return {u for u in urls if all(committed_part(layout, t, u, verify=fresh) for t in tables)}


def run_on_devices(cfg: ExtractConfig, child: Callable[[ExtractConfig, str], None] = _child) -> ExtractSummary:
    """Extract with one process per device of `cfg.devices`; `child` is the process's function."""
    if not cfg.devices:
        raise DevicesError("`devices` names no device", argument="devices")
    urls = selected_shards(cfg)
    if cfg.overwrite:  # drop once here, not in every process
        for table, _ in cfg.targets():
            if _exists(cfg.store, table):
                TableWriter.reopen(cfg.store, table).drop(table)
    summary = ExtractSummary(table=", ".join(t for t, _ in cfg.targets()), shards=len(urls),
                             devices=list(cfg.devices))
    done = _done(cfg, urls)
    summary.shards_skipped = len(done)
    start = time.perf_counter()
    bar = tqdm(total=len(urls), initial=summary.shards_skipped, unit="shard",
               desc=f"extract on {len(cfg.devices)} devices", disable=not cfg.progress)
    with bar, tempfile.TemporaryDirectory(prefix="artlens-devices-") as tmp:
        rounds = DeviceRound(cfg, child, Path(tmp), summary, bar, urls)
        retry_rounds([u for u in distinct_shards(urls) if u not in done], rounds, partial(_done, cfg), cfg.retries, summary)
        bar.n = len(_done(cfg, urls))
        bar.refresh()
    summary.elapsed_s = time.perf_counter() - start
    summary.recount((TableWriter.reopen(cfg.store, t) for t, _ in cfg.targets() if _exists(cfg.store, t)), urls,
                    cfg.store)
    return summary


@dataclass
class DeviceRound:
    """One round: the shards shared out over the devices, one spawned process each, waited for."""
    cfg: ExtractConfig
    child: Callable[[ExtractConfig, str], None]
    scratch: Path
    summary: ExtractSummary
    bar: tqdm
    urls: list[str]
    number: int = 0

    def __call__(self, shards: list[str]) -> None:
        self.number += 1
        procs = self.start(shards)
        while any(p.is_alive() for p, _ in procs):
            time.sleep(0.5)
            self.bar.n = len(_done(self.cfg, self.urls, fresh=False))
            self.bar.refresh()
        refused = [r for r in (self.collect(p, Path(out)) for p, out in procs) if r is not None]
        if refused:
            raise REFUSALS[refused[0]["kind"]](refused[0])

    def start(self, shards: list[str]) -> list[tuple]:
        context = multiprocessing.get_context("spawn")
        # The machine's cores are shared by the device processes: each gets its part of the decode workers.
        n, cores = len(self.cfg.devices), os.cpu_count() or 2
        workers = self.cfg.workers if self.cfg.workers is not None else max(1, (cores - 2 * n) // n)
        procs = []
        for name, share in assign(shards, list(self.cfg.devices)).items():
            if not share:
                continue
            device = name.split(":", 1)[1]
            sub = replace(self.cfg, only=tuple(share), devices=(), retries=0, overwrite=False, progress=False,
                          workers=workers, model=replace(self.cfg.model, device=device),
                          models=tuple(replace(m, device=device) for m in self.cfg.models))
            out = str(self.scratch / f"{self.number}-{name.replace(':', '_')}.json")
            proc = context.Process(target=self.child, args=(sub, out), name=f"artlens-extract-{name}")
            with children_leave_out(unused_packages(m.model for _, m in self.cfg.targets())):
                proc.start()  # a device process imports only what its models need (artlens/startup.py)
            procs.append((proc, out))
        return procs

    def collect(self, proc, out: Path) -> dict | None:
        """Join a process and take its per-shard counts; its refusal, if it refused its input."""
        proc.join()
        result = json.loads(out.read_text()) if out.exists() else {}
        if "refused" in result:
            return result["refused"]
        if proc.exitcode == 0 and result:
            self.summary.absorb(result["tallies"])
            self.summary.decode = result.get("decode") or self.summary.decode
        else:
            self.summary.failed_processes += 1
        return None


def _exists(root: str, table: str) -> bool:
    path = StoreLayout.at(root).catalog_path
    return path.exists() and Catalog(path).get(table) is not None
