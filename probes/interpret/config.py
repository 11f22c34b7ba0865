"""The configs of `artlens saliency` and `artlens guide`, shared by the CLI and the Python API. Light to
import (no torch): the CLI reads its flag defaults from them. Names are checked against `names`, whose keys
the registries that implement them (`saliency.METHODS`, `ig.BASELINES`, `guide.OPTIMIZERS`) use."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from artlens.errors import UserError
from artlens.probes.interpret.names import BASELINE_TEXTS, METHOD_CITATIONS, OPTIMIZER_TEXTS
from artlens.probes.config import check_n_boot
from artlens.probes.interpret.source import ModelSource


@dataclass(frozen=True)
class SaliencyConfig:
    image: str | None             # an image file, or None with `key`
    text: str
    out: str | None               # FILE.png (the sidecar is FILE.json); None with `key`: the store's place
    source: ModelSource
    method: str = "ig"
    steps: int = 50               # ig: points on the path from the baseline
    baseline: str = "black"       # ig: see names.BASELINE_TEXTS (ig.BASELINES)
    batch_size: int = 16          # ig: path points per forward pass
    key: str | None = None        # a row of the source's table: its painting (Store.image), kept in the store

    def __post_init__(self) -> None:
        if (self.image is None) == (self.key is None):
            raise UserError("give an `image` file or the `key` of a row of the table, not both or neither",
                            argument=("image", "key"))
        if self.key is not None and not self.source.by_table:
            raise UserError("`key` names a row of a store table: give `store` and `table` with it (the row's "
                            "painting and the table's own model)", argument=("key", "store", "table"))
        if self.out is None and self.key is None:
            raise UserError("give `out` FILE.png for the heatmap of an `image` file", argument=("out", "image"))
        if self.method not in METHOD_CITATIONS:
            raise UserError(f"unknown method {self.method!r}; methods: {', '.join(METHOD_CITATIONS)}",
                            argument="method")
        if self.baseline not in BASELINE_TEXTS:
            raise UserError(f"unknown baseline {self.baseline!r}; baselines: {', '.join(BASELINE_TEXTS)}",
                            argument="baseline")
        if self.steps < 2 or self.batch_size < 1:
            raise UserError(f"steps must be at least 2 and batch_size at least 1, got {self.steps}, "
                            f"{self.batch_size}", argument=("steps", "batch_size"))
        if self.out is not None and Path(self.out).suffix.lower() != ".png":
            raise UserError(f"`out` must name a .png file, got {self.out}", argument="out")
        if not self.text.strip():
            raise UserError("text must not be empty", argument="text")


@dataclass(frozen=True)
class GuideConfig:
    images: tuple[str, ...]       # image files (folders already expanded)
    text: str
    out: str                      # output folder
    source: ModelSource
    steps: int = 10
    lr: float = 1 / 255
    optimizer: str = "sign"
    noise_draws: int = 5
    seed: int = 0
    n_boot: int = 1000

    def __post_init__(self) -> None:
        if not self.images:
            raise UserError("give at least one image", argument="images")
        if self.optimizer not in OPTIMIZER_TEXTS:
            raise UserError(f"unknown optimizer {self.optimizer!r}; optimizers: {', '.join(OPTIMIZER_TEXTS)}",
                            argument="optimizer")
        if self.steps < 1 or self.noise_draws < 1 or not 0 < self.lr <= 1:
            raise UserError(f"steps and noise_draws must be at least 1 and lr in (0, 1], got "
                            f"{self.steps}, {self.noise_draws}, {self.lr}", argument=("steps", "noise_draws", "lr"))
        if not self.text.strip():
            raise UserError("text must not be empty", argument="text")
        check_n_boot(self.n_boot)
