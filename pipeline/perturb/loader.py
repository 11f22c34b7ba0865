"""Shards → per-shard batches of deformed images, preprocessed for the model, made in DataLoader workers.

Stages, in order: the shard-reading stages of extraction (tar members → samples → records → decoded upright
RGB image, `pipeline.loader`), skip samples that are not rows of the clean table, reduce to the suite's
working size, every deformation × severity (`pipeline.deformations`), SSIM against the clean image and the
model's own preprocess, then batches that never mix shards; each shard's last batch is flagged `last`, as
in extraction, so the commit loop they share (pipeline/extract/commit.py) commits the shard's part when it
arrives. Failures become `Failure` records.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from artlens.pipeline.perturb.deformations import deform
from artlens.pipeline.perturb.suite import SEVERITIES, DeformationSpec, Suite
from artlens.pipeline.failures import Failure
from artlens.pipeline.extract.loader import decoded
from artlens.pipeline.perturb.visibility import scaled, ssim


@dataclass
class PerturbBatch:
    shard: str
    rows: list[dict] = field(default_factory=list)
    pixels: torch.Tensor | None = None       # [B, 3, H, W], the model's own preprocess of each deformed image
    failures: list[Failure] = field(default_factory=list)
    last: bool = False
    commit: bool = True          # False when the shard could not be read at all (retry on the next run)
    skipped: int = 0             # decoded samples whose key is not a row of the clean table
    gpu_decoded: int = 0         # always 0: perturb decodes with Pillow (a field the commit loop reads)

    def pin_memory(self) -> "PerturbBatch":  # called by DataLoader(pin_memory=True)
        if self.pixels is not None:
            self.pixels = self.pixels.pin_memory()
        return self


@dataclass(frozen=True)
class PerturbJob:
    """Everything a worker needs, picklable."""
    suite: Suite
    preprocess: Callable          # the clean table's model preprocess: PIL RGB → tensor
    keys: frozenset[str]          # keys of the clean table
    max_pixels: int
    batch_size: int


def working_image(image: Image.Image, suite: Suite) -> Image.Image:
    """The clean image every deformation starts from: reduced so its shorter side is at most work_side."""
    return image if suite.work_side is None else scaled(image, suite.work_side, enlarge=False)


def grid(suite: Suite) -> Iterator[tuple[DeformationSpec, int]]:
    """Every (deformation, severity) of the suite, in suite order."""
    for spec in suite.deformations:
        for severity in SEVERITIES:
            yield spec, severity


def _deformed(url: str, row: dict, image: Image.Image, job: PerturbJob,
              failures: list[Failure]) -> Iterator[tuple[dict, torch.Tensor]]:
    """(row, pixels) of every deformation × severity of one clean image; failures recorded, the rest kept."""
    work, key = working_image(image, job.suite), row["key"]
    for spec, severity in grid(job.suite):
        level = spec.level(severity)
        try:
            deformed = deform(work, spec.name, level, key, dict(spec.options))
            pixels, visible = job.preprocess(deformed), ssim(work, deformed, job.suite.ssim_side)
        except Exception as exc:  # one odd image or setting must not end the run
            failures.append(Failure(key, url, "deform", f"{spec.name} severity {severity}: "
                                                        f"{type(exc).__name__}: {exc}"))
            continue
        yield {"key": key, "shard": row["shard"], "deformation": spec.name, "severity": severity,
               "level": level, "ssim": visible}, pixels


def _taking(batch: PerturbBatch, pixels: list[torch.Tensor], failures: list[Failure]) -> PerturbBatch:
    """Fill the batch with the pixels and the failures gathered so far; `failures` is emptied in place
    (the reading stages keep appending to that same list)."""
    batch.pixels = torch.stack(pixels) if pixels else None
    batch.failures = failures.copy()
    failures.clear()
    return batch


def perturbed_batches(url: str, job: PerturbJob) -> Iterator[PerturbBatch]:
    """All batches of one shard; the final one has `last=True` (and may be empty)."""
    batch, pixels, failures = PerturbBatch(shard=url), [], []
    try:
        for row, image in decoded(url, job.max_pixels, failures):
            if row["key"] not in job.keys:
                batch.skipped += 1
                continue
            for out, px in _deformed(url, row, image, job, failures):
                batch.rows.append(out)
                pixels.append(px)
                if len(pixels) == job.batch_size:
                    yield _taking(batch, pixels, failures)
                    batch, pixels = PerturbBatch(shard=url), []
    except OSError as exc:  # the shard itself could not be opened or read
        failures.append(Failure(None, url, "read", f"cannot read shard: {exc}"))
        batch.commit = False
    batch.last = True
    yield _taking(batch, pixels, failures)


class PerturbDataset(IterableDataset):
    """Whole shards per worker (shard i → worker i mod N), so a shard's batches arrive in order."""

    def __init__(self, shards: list[str], job: PerturbJob):
        super().__init__()
        self.shards, self.job = shards, job

    def __iter__(self) -> Iterator[PerturbBatch]:
        info = get_worker_info()
        for url in self.shards if info is None else self.shards[info.id::info.num_workers]:
            yield from perturbed_batches(url, self.job)


def _as_is(batch: PerturbBatch) -> PerturbBatch:
    return batch


def perturb_loader(shards: list[str], job: PerturbJob, workers: int, pin_memory: bool = False) -> DataLoader:
    workers = min(workers, len(shards))
    return DataLoader(PerturbDataset(shards, job), batch_size=None, num_workers=workers, collate_fn=_as_is,
                      pin_memory=pin_memory, prefetch_factor=2 if workers else None)
