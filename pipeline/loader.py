"""Shards → per-shard batches of preprocessed pixels, decoded in DataLoader worker processes.

Each worker takes whole shards (shard i goes to worker i mod N), so a batch never mixes shards and every
shard ends with a batch flagged `last`: the extractor commits a shard's part when it sees that flag.
Stages, in order: tar members → samples → records → decoded images → pixels → batches.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .decode import ImageRejected, decode_image
from .failures import Failure
from .records import RecordError, to_record
from .tarsamples import iter_samples


@dataclass
class ShardBatch:
    shard: str
    rows: list[dict] = field(default_factory=list)
    pixels: torch.Tensor | None = None
    failures: list[Failure] = field(default_factory=list)
    last: bool = False
    commit: bool = True          # False when the shard could not be read at all (retry on the next run)

    def pin_memory(self) -> "ShardBatch":  # called by DataLoader(pin_memory=True)
        if self.pixels is not None:
            self.pixels = self.pixels.pin_memory()
        return self


@dataclass(frozen=True)
class DecodeOptions:
    max_pixels: int
    batch_size: int


def _prepared(url: str, preprocess: Callable, opts: DecodeOptions,
              failures: list[Failure]) -> Iterator[tuple[dict, torch.Tensor]]:
    """(row, pixels) for every usable sample of a shard; the rest go to `failures`."""
    for sample in iter_samples(url, failures.append):
        try:
            record = to_record(sample)
        except RecordError as exc:
            failures.append(Failure(sample.key, url, exc.stage, str(exc)))
            continue
        try:
            image = decode_image(record.image, opts.max_pixels)
        except ImageRejected as exc:
            failures.append(Failure(sample.key, url, "decode", str(exc)))
            continue
        try:
            pixels = preprocess(image)
        except Exception as exc:  # a transform failing on one odd image must not end the run
            failures.append(Failure(sample.key, url, "preprocess", f"{type(exc).__name__}: {exc}"))
            continue
        record.row["width"], record.row["height"] = image.size
        yield record.row, pixels


def shard_batches(url: str, preprocess: Callable, opts: DecodeOptions) -> Iterator[ShardBatch]:
    """All batches of one shard; the final one has `last=True` (and may be empty)."""
    batch = ShardBatch(shard=url)
    pixels: list[torch.Tensor] = []
    try:
        for row, px in _prepared(url, preprocess, opts, batch.failures):
            batch.rows.append(row)
            pixels.append(px)
            if len(pixels) == opts.batch_size:
                batch.pixels = torch.stack(pixels)
                yield batch
                batch, pixels = ShardBatch(shard=url), []
    except OSError as exc:  # the shard itself could not be opened or read
        batch.failures.append(Failure(None, url, "read", f"cannot read shard: {exc}"))
        batch.commit = False
    batch.pixels = torch.stack(pixels) if pixels else None
    batch.last = True
    yield batch


class ShardDataset(IterableDataset):
    def __init__(self, shards: list[str], preprocess: Callable, opts: DecodeOptions):
        super().__init__()
        self.shards, self.preprocess, self.opts = shards, preprocess, opts

    def __iter__(self) -> Iterator[ShardBatch]:
        info = get_worker_info()
        mine = self.shards if info is None else self.shards[info.id::info.num_workers]
        for url in mine:
            yield from shard_batches(url, self.preprocess, self.opts)


def _keep(item: ShardBatch) -> ShardBatch:
    return item


def batch_loader(shards: list[str], preprocess: Callable, opts: DecodeOptions, workers: int,
                 pin_memory: bool = False) -> DataLoader:
    dataset = ShardDataset(shards, preprocess, opts)
    workers = min(workers, len(shards))
    return DataLoader(dataset, batch_size=None, num_workers=workers, collate_fn=_keep,
                      pin_memory=pin_memory, prefetch_factor=4 if workers else None,
                      persistent_workers=False)
