"""The main process's GPU stage: decode a batch's JPEGs on the GPU, resize and crop them there, and put
the batch together in row order, on a few threads with a CUDA stream each.

Decoding runs in the same process (one CUDA context) as the model, so the GPU runs decode and model
kernels side by side instead of time-slicing between contexts (given enough hardware queues:
`claim_hardware_queues`), and several batches are in flight at once (`in_order`), so shard reading
(workers), decoding (these threads) and the model overlap. Images
nvJPEG refuses are decoded by Pillow here (rare: the workers only send what `gpu_eligible` accepts); an
image neither can decode becomes a failure row, so none is lost silently.
"""
from __future__ import annotations

import contextlib
import os
import threading
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable, Iterator, Sequence

import torch

from .decode import ImageRejected, decode_image
from .failures import Failure
from .gpudecode import Eligible, decode_batch, jpeg_decoder
from .loader import ShardBatch


#: Hardware work queues CUDA gives a process (its maximum; the default is 8). Streams beyond that share
#: queues, and work on a shared queue runs in submission order: with 8, the decoder's copies and kernels
#: (torchvision's nvJPEG spreads them over 14 streams) waited behind the model's. On an H100, ViT-B-32 ran
#: at about 23,000 img/s while nvJPEG beside it decoded 3,267 img/s with 8 queues and 7,016 with 32
#: (docs/performance.md).
HARDWARE_QUEUES = "32"


def claim_hardware_queues() -> bool:
    """Ask for CUDA's most hardware queues; only possible before this process first uses CUDA. True when
    the process has them (or will)."""
    if not torch.cuda.is_initialized():
        os.environ.setdefault("CUDA_DEVICE_MAX_CONNECTIONS", HARDWARE_QUEUES)
    return os.environ.get("CUDA_DEVICE_MAX_CONNECTIONS") == HARDWARE_QUEUES


def warn_if_few_queues() -> None:
    if not claim_hardware_queues():
        warnings.warn(f"CUDA was started before artlens could ask for {HARDWARE_QUEUES} hardware queues; GPU "
                      f"decoding will wait behind the model. Set CUDA_DEVICE_MAX_CONNECTIONS={HARDWARE_QUEUES} before "
                      "anything uses CUDA (the artlens command does).", RuntimeWarning, stacklevel=3)


class DeviceStage:
    def __init__(self, plans: Sequence, device: torch.device, max_pixels: int, decoder: str = "auto"):
        self.plans, self.device, self.max_pixels = plans, device, max_pixels
        self.decoder = jpeg_decoder(device, decoder)
        self.local = threading.local()

    def _stream(self):
        if self.device.type != "cuda":
            return None
        if not hasattr(self.local, "stream"):
            self.local.stream = torch.cuda.Stream(self.device)
        return self.local.stream

    def _fallback(self, batch: ShardBatch, position: int, data: bytes) -> list[torch.Tensor] | None:
        row = batch.rows[position]
        try:
            image = decode_image(data, self.max_pixels)
            return [plan.geometry(image).to(self.device) for plan in self.plans]
        except ImageRejected as exc:
            batch.failures.append(Failure(row["key"], batch.shard, "decode", str(exc)))
        except Exception as exc:
            batch.failures.append(Failure(row["key"], batch.shard, "preprocess", f"{type(exc).__name__}: {exc}"))
        return None

    def prepare(self, batch: ShardBatch) -> ShardBatch:
        """Return the batch with `pixels` on the device, one [B,3,H,W] uint8 tensor per plan, rows in order."""
        if not batch.jpeg_positions:
            return batch
        stream = self._stream()
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            ready, decoded = self._assemble(batch)
            if stream is not None:
                stream.synchronize()  # this thread waits, not the model's; then the decoder's buffers may go
        del decoded
        return ready

    def _assemble(self, batch: ShardBatch) -> tuple[ShardBatch, list]:
        buf, offs = batch.jpeg_bytes, batch.jpeg_offsets
        items = [(j, buf[offs[j]:offs[j + 1]], Eligible(size)) for j, size in enumerate(batch.jpeg_sizes)]
        decoded_at, decoded, fallback_at, fallback = [], [], [], []
        for j, image in decode_batch(items, self.decoder):
            position = batch.jpeg_positions[j]
            if image is not None:
                decoded_at.append(position)
                decoded.append(image)
            elif (pixels := self._fallback(batch, position, bytes(items[j][1].numpy()))) is not None:
                fallback_at.append(position)
                fallback.append(pixels)
        batch.gpu_decoded = len(decoded)
        positions = batch.cpu_positions + decoded_at + fallback_at
        order = sorted(range(len(positions)), key=positions.__getitem__)
        per_plan = []
        for k, plan in enumerate(self.plans):
            parts = [batch.pixels[k].to(self.device, non_blocking=True)] if batch.pixels is not None else []
            parts += [plan.geometry_batch(decoded)] if decoded else []
            parts += [torch.stack([f[k] for f in fallback])] if fallback else []
            per_plan.append(torch.cat(parts)[order] if positions else None)
        batch.rows = [batch.rows[positions[i]] for i in order]
        batch.pixels = per_plan if positions else None
        batch.jpeg_bytes, batch.jpeg_positions, batch.cpu_positions = None, [], []
        return batch, decoded


def in_order(batches: Iterable[ShardBatch], stage: DeviceStage | None, threads: int) -> Iterator[ShardBatch]:
    """Batches prepared by `stage` on `threads` threads, yielded in the order they came (a shard's `last`
    batch must come after its others), with up to `threads` + 1 in flight."""
    if stage is None:
        yield from batches
        return
    inflight: deque[Future] = deque()
    with ThreadPoolExecutor(threads, thread_name_prefix="artlens-nvjpeg") as pool:
        for batch in batches:
            inflight.append(pool.submit(stage.prepare, batch))
            while len(inflight) > threads:
                yield inflight.popleft().result()
        while inflight:
            yield inflight.popleft().result()


def used_here(pixels: Sequence[torch.Tensor]) -> None:
    """Tell the caching allocator that the current (model) stream reads tensors made on a decode stream,
    so their memory is not reused before the model is done with them."""
    for p in pixels:
        if p.is_cuda:
            p.record_stream(torch.cuda.current_stream(p.device))
