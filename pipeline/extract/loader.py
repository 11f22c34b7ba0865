"""Shards → per-shard batches of uint8 pixels, decoded in DataLoader worker processes.

Workers take whole shards from a shared counter (the next free shard, so no worker idles while another
still has two), and a batch never mixes shards: every shard's final batch is flagged `last`, and the
commit loop (commit.py) commits a shard's part when it sees that flag.

Stages, in order: tar members (or a folder's files: pipeline/shards/folder.py) → samples → records → decoded
images → pixels (one tensor per distinct preprocessing plan, so several models share one decode) → batches. With `jpeg_to_device`, JPEGs that nvJPEG
can take are left undecoded for the main process, where pipeline/imaging/gpu/stage.py decodes them on the GPU (one
CUDA context: worker processes with their own contexts would time-slice the GPU against the model); from a
plain local tar only their place in the file is sent, from other shards their bytes.
"""
from __future__ import annotations

import itertools
import multiprocessing
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from artlens.pipeline.imaging.decode import DEFAULT_MAX_MEMBER_BYTES, ImageRejected, decode_image
from artlens.pipeline.failures import Failure
from artlens.pipeline.imaging.gpu.decoders import gpu_eligible
from artlens.pipeline.shards.records import Record, RecordError, to_record
from artlens.pipeline.shards.folder import FolderSource
from artlens.pipeline.shards.tarsamples import iter_samples


@dataclass
class ShardBatch:
    shard: str
    rows: list[dict] = field(default_factory=list)
    pixels: list[torch.Tensor] | None = None     # one [B,3,H,W] tensor per plan; None when no rows
    failures: list[Failure] = field(default_factory=list)
    last: bool = False
    commit: bool = True          # False when the shard could not be read at all (retry on the next run)
    gpu_decoded: int = 0         # how many of the rows nvJPEG decoded
    skipped: int = 0             # samples left out on purpose (none here; perturb's batches have some)
    # Rows whose JPEG the device stage decodes (pipeline/imaging/gpu/stage.py): their positions in `rows`, where
    # each file's bytes lie (start, end) and the image sizes. The bytes are read by the device stage from
    # `jpeg_file` (a plain local tar: nothing but these numbers crosses between processes) or else travel in
    # `jpeg_bytes`, all of them in one buffer (one shared-memory segment, not hundreds).
    # `pixels` then holds only the other rows, at `cpu_positions`.
    jpeg_positions: list[int] = field(default_factory=list)
    jpeg_spans: list[tuple[int, int]] = field(default_factory=list)
    jpeg_file: str | None = None
    jpeg_bytes: torch.Tensor | None = None
    jpeg_sizes: list[tuple[int, int]] = field(default_factory=list)
    cpu_positions: list[int] = field(default_factory=list)

    def pin_memory(self) -> "ShardBatch":  # called by DataLoader(pin_memory=True)
        if self.pixels is not None:
            self.pixels = [p.pin_memory() for p in self.pixels]
        if self.jpeg_bytes is not None:  # the GPU decoders' copies of the files then need no staging buffer
            self.jpeg_bytes = self.jpeg_bytes.pin_memory()
        return self


@dataclass(frozen=True)
class DecodeOptions:
    max_pixels: int
    batch_size: int
    jpeg_to_device: bool = False  # ship eligible JPEGs undecoded, for nvJPEG in the main process
    max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES  # tar members declaring more are failure rows, never read
    folder: FolderSource | None = None  # the shards are this folder's virtual shards (pipeline/shards/folder.py)

    def samples(self, url: str, handler, max_member_bytes: int):
        """The shard's raw samples: from the folder's chunk, else from the tar (the same samples either way)."""
        read = self.folder.samples if self.folder is not None else iter_samples
        return read(url, handler, max_member_bytes)


def _records(url: str, failures: list[Failure], max_member_bytes: int = DEFAULT_MAX_MEMBER_BYTES,
             opts: DecodeOptions | None = None) -> Iterator[Record]:
    samples = opts.samples if opts is not None else iter_samples
    for sample in samples(url, failures.append, max_member_bytes):
        try:
            yield to_record(sample)
        except RecordError as exc:
            failures.append(Failure(sample.key, url, exc.stage, str(exc)))


def _decode(record: Record, url: str, max_pixels: int, failures: list[Failure]):
    """The record's upright RGB image (its width and height set in the row), or None with a failure."""
    try:
        image = decode_image(record.image, max_pixels)
    except ImageRejected as exc:
        failures.append(Failure(record.key, url, "decode", str(exc)))
        return None
    record.row["width"], record.row["height"] = image.size
    return image


def decoded(url: str, max_pixels: int, failures: list[Failure]):
    """(row, upright RGB PIL image) for every usable sample of a shard, in order; the rest go to
    `failures`. For stages that work on whole images (deformations, contact sheets)."""
    for record in _records(url, failures):
        if (image := _decode(record, url, max_pixels, failures)) is not None:
            yield record.row, image


def _chunks(items: Iterator[Record], size: int) -> Iterator[list[Record]]:
    chunk: list[Record] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _Decoder:
    """Turns a chunk of records into a batch, in input order, failures reported. JPEGs that nvJPEG can
    take are passed on undecoded when `jpeg_to_device`; everything else is decoded here by Pillow."""

    def __init__(self, plans: Sequence, opts: DecodeOptions):
        self.plans, self.opts = plans, opts
        self.to_device = opts.jpeg_to_device and all(p.gpu_ok for p in plans)

    def cpu(self, record: Record, url: str, failures: list[Failure]):
        image = _decode(record, url, self.opts.max_pixels, failures)
        if image is None:
            return None
        try:
            return [plan.geometry(image) for plan in self.plans]
        except Exception as exc:  # a transform failing on one odd image must not end the run
            failures.append(Failure(record.key, url, "preprocess", f"{type(exc).__name__}: {exc}"))
            return None

    def batch(self, chunk: list[Record], url: str) -> ShardBatch:
        batch = ShardBatch(shard=url)
        per_plan: list[list[torch.Tensor]] = [[] for _ in self.plans]
        jpegs: list[Record] = []
        for record in chunk:
            meta = gpu_eligible(record.image, self.opts.max_pixels) if self.to_device else None
            if meta is not None:
                batch.jpeg_positions.append(len(batch.rows))
                batch.jpeg_sizes.append(meta.size)
                record.row["width"], record.row["height"] = meta.size
                jpegs.append(record)
                batch.rows.append(record.row)
                continue
            pixels = self.cpu(record, url, batch.failures)
            if pixels is None:
                continue
            batch.cpu_positions.append(len(batch.rows))
            batch.rows.append(record.row)
            for p, px in enumerate(pixels):
                per_plan[p].append(px)
        if jpegs and all(r.image_offset is not None for r in jpegs):
            batch.jpeg_file = url
            batch.jpeg_spans = [(r.image_offset, r.image_offset + len(r.image)) for r in jpegs]
        elif jpegs:
            ends = list(itertools.accumulate(len(r.image) for r in jpegs))
            batch.jpeg_spans = list(zip([0, *ends[:-1]], ends))
            batch.jpeg_bytes = torch.frombuffer(bytearray(b"".join(r.image for r in jpegs)), dtype=torch.uint8)
        batch.pixels = [torch.stack(px) for px in per_plan] if batch.cpu_positions else None
        return batch


def shard_batches(url: str, plans: Sequence, opts: DecodeOptions) -> Iterator[ShardBatch]:
    """All batches of one shard; the final one has `last=True`. It is the shard's last batch of rows (one
    batch is held back until the next is read), so a shard costs no extra empty batch, except when it has no
    rows or cannot be read."""
    decoder, pending = _Decoder(plans, opts), []   # `pending` is the one list _records reports into
    held: ShardBatch | None = None
    try:
        for chunk in _chunks(_records(url, pending, opts.max_member_bytes, opts), opts.batch_size):
            if held is not None:
                yield held
            held = decoder.batch(chunk, url)
            held.failures[:0] = pending
            pending.clear()
    except OSError as exc:  # the shard itself could not be opened or read
        if held is not None:
            yield held
        held = ShardBatch(shard=url, commit=False)
        pending.append(Failure(None, url, "read", f"cannot read shard: {exc}"))
    final = held if held is not None else ShardBatch(shard=url)
    final.failures.extend(pending)
    final.last = True
    yield final


class ShardDataset(IterableDataset):
    """Each worker takes the next unclaimed shard from a shared counter until none is left."""

    def __init__(self, shards: list[str], plans: Sequence, opts: DecodeOptions, context):
        super().__init__()
        self.shards, self.plans, self.opts = shards, plans, opts
        self.next_shard = context.Value("i", 0)

    def _claim(self) -> int:
        with self.next_shard.get_lock():
            index = self.next_shard.value
            self.next_shard.value += 1
        return index

    def __iter__(self) -> Iterator[ShardBatch]:
        if get_worker_info() is None:  # in-process: plain order
            for url in self.shards:
                yield from shard_batches(url, self.plans, self.opts)
            return
        while (index := self._claim()) < len(self.shards):
            yield from shard_batches(self.shards[index], self.plans, self.opts)


def _keep(item: ShardBatch) -> ShardBatch:
    return item


def batch_loader(shards: list[str], plans: Sequence, opts: DecodeOptions, workers: int,
                 pin_memory: bool = False) -> DataLoader:
    workers = min(workers, len(shards))
    context = multiprocessing.get_context()  # workers never touch CUDA: they read, check and decode on the CPU
    dataset = ShardDataset(shards, plans, opts, context)
    return DataLoader(dataset, batch_size=None, num_workers=workers, collate_fn=_keep,
                      pin_memory=pin_memory, prefetch_factor=4 if workers else None,
                      persistent_workers=False, multiprocessing_context=context if workers else None)
