"""The extraction engines, and `run(cfg)`, which picks one from `ExtractConfig.engine` (`artlens.extract`).

    ENGINES["local"]  this process (run.py), or one process per device when `cfg.devices` is set (devices.py)
    ENGINES["ray"]    Ray Data: decode tasks, a model actor pool, commits by the driver (raydata.py)

Every engine feeds the same per-shard commit loop (commit.py), retries by the same rule (retry.py) and
returns the same `ExtractSummary` (summary.py).
"""
from __future__ import annotations

from typing import Callable

from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.extract.engines.devices import run_on_devices
from artlens.pipeline.extract.engines.raydata import run_with_ray
from artlens.pipeline.extract.run import run_extract
from artlens.pipeline.extract.summary import ExtractSummary


def run_local(cfg: ExtractConfig) -> ExtractSummary:
    """The local engine: in this process, or one process per device of `cfg.devices`."""
    return run_on_devices(cfg) if cfg.devices else run_extract(cfg)


#: engine name → its run function (config.py ENGINE_NAMES lists the same names)
ENGINES: dict[str, Callable[[ExtractConfig], ExtractSummary]] = {"local": run_local, "ray": run_with_ray}


def run(cfg: ExtractConfig) -> ExtractSummary:
    """Extract `cfg.shards` into `cfg.store` with the engine the config names; then, with `cfg.thumbnails`, the
    thumbnails of that size of every row of its tables that has none cached (Store.make_thumbnails)."""
    summary = ENGINES[cfg.engine](cfg)
    if cfg.thumbnails:
        from artlens import store

        with store.open(cfg.store) as s:
            summary.thumbnails = sum(s.make_thumbnails(table, cfg.thumbnails, progress=cfg.progress)
                                     for table, _ in cfg.targets() if table in s.tables())
        summary.thumbnail_size = cfg.thumbnails
    return summary
