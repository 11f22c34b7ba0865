"""The main process's GPU stage: decode a batch's JPEGs on the GPU, resize and crop them there, and put
the batch together in row order, on a few threads with a CUDA stream each.

From a plain local tar the workers send only where each JPEG lies; a thread here reads those bytes from the
file (the page cache: a worker has just read it) into its own reused pinned buffer. Carrying them through
shared memory instead cost the loader's single pin-memory thread a fresh 100 MB mapping and copy per batch,
and the model waited on it (docs/performance.md).

Decoding runs in the same process (one CUDA context) as the model, so the GPU runs decode and model
kernels side by side instead of time-slicing between contexts (given enough hardware queues:
`claim_hardware_queues`), and several batches are in flight at once (`in_order`), so shard reading
(workers), decoding (these threads) and the model overlap. Images
nvJPEG refuses are decoded by Pillow here (rare: the workers only send what `gpu_eligible` accepts); an
image neither can decode becomes a failure row, so none is lost silently.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import logging
import os
import threading
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Iterable, Iterator, Sequence

import torch

from artlens.pipeline.imaging.decode import ImageRejected, decode_image
from artlens.pipeline.failures import Failure
from artlens.pipeline.imaging.gpu.decoders import Eligible, decode_batch, jpeg_decoder, pixel_budget
from artlens.pipeline.extract.loader import ShardBatch


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


#: File-byte buffers grow in steps of this size (a batch of 512 typical paintings holds about 100 MB).
READ_STEP = 32 << 20

_STREAMS: dict[tuple[str, str], torch.cuda.Stream] = {}


def kept_stream(device: torch.device, role: str) -> torch.cuda.Stream:
    """The process's CUDA stream for `role` on `device`, made once. The caching allocator keeps freed memory
    per stream, so fresh streams for every extraction in a process would allocate again, and cudaMalloc
    waits for the whole device."""
    key = (str(device), role)
    if key not in _STREAMS:
        _STREAMS[key] = torch.cuda.Stream(device)
    return _STREAMS[key]


def _tiny_jpeg() -> torch.Tensor:
    """A small JPEG's bytes (uint8, 1-D) to start the decoder and the resize kernel on."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 120, 60)).save(out, format="JPEG")
    return torch.frombuffer(bytearray(out.getvalue()), dtype=torch.uint8)


class DeviceStage:
    def __init__(self, plans: Sequence, device: torch.device, max_pixels: int, decoder: str = "auto"):
        self.plans, self.device, self.max_pixels = plans, device, max_pixels
        self.decoder = jpeg_decoder(device, decoder)
        self.budget = pixel_budget(device)
        self.local = threading.local()
        self.slots = itertools.count()
        self.warmed: Future | None = None
        self.warm_error: str | None = None

    def warm_up(self) -> Future:
        """Start the decoder and each plan's resize kernel on a background thread, on one small JPEG: the
        first batch's decode otherwise waits for them (nvJPEG's set-up and the Triton kernel's load took
        about 1.3 s of the first batch on the H200 machine, docs/performance.md), which can instead run
        while the workers read the first shard. `prepare` waits for it; a warm-up that fails is ignored
        (the real batch then meets the same problem and handles it)."""
        def run() -> None:
            cuda = self.device.type == "cuda"
            stream = kept_stream(self.device, "warm-up") if cuda else None
            with torch.cuda.stream(stream) if cuda else contextlib.nullcontext(), torch.inference_mode():
                image = self.decoder.decode([_tiny_jpeg()])[0]
                for plan in self.plans:
                    plan.geometry_batch([image])
                if cuda:
                    stream.synchronize()

        def quietly() -> None:
            try:
                run()
            except Exception as exc:  # noqa: BLE001 - a warm-up only: the first batch meets it properly
                self.warm_error = f"{type(exc).__name__}: {exc}"
                logging.getLogger(__name__).info("GPU decode warm-up failed: %s", self.warm_error)

        self.warmed = Future()
        thread = threading.Thread(target=lambda: (quietly(), self.warmed.set_result(None)),
                                  name="artlens-warm-up", daemon=True)
        thread.start()
        return self.warmed

    def _stream(self):
        if self.device.type != "cuda":
            return None
        if not hasattr(self.local, "stream"):  # thread k of this stage decodes on the process's k-th decode stream
            self.local.stream = kept_stream(self.device, f"decode-{next(self.slots)}")
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
        if self.warmed is not None:
            self.warmed.result()
        stream = self._stream()
        with torch.cuda.stream(stream) if stream is not None else contextlib.nullcontext():
            ready, decoded = self._assemble(batch)
            if stream is not None:
                stream.synchronize()  # this thread waits, not the model's; then the decoder's buffers may go
        del decoded
        return ready

    def _buffer(self, size: int) -> torch.Tensor:
        """This thread's buffer for file bytes (pinned on CUDA), reused from batch to batch."""
        buf = getattr(self.local, "buffer", None)
        if buf is None or buf.numel() < size:
            size = -(-size // READ_STEP) * READ_STEP
            buf = self.local.buffer = torch.empty(size, dtype=torch.uint8, pin_memory=self.device.type == "cuda")
        return buf

    def _jpeg_items(self, batch: ShardBatch) -> list[tuple[int, torch.Tensor, Eligible]]:
        """(index, bytes, header facts) of the batch's JPEGs. Bytes named by a file are read from it in one
        call (the page cache has them: the worker just read the shard), with the GIL released; an image
        whose bytes are no longer what the worker checked (the shard changed since) becomes a failure."""
        spans, problem = batch.jpeg_spans, "the shard file changed while it was being extracted"
        if batch.jpeg_file is None:
            buf = batch.jpeg_bytes
        else:
            lo, hi = min(s for s, _ in spans), max(e for _, e in spans)
            buf = self._buffer(hi - lo)
            try:
                with open(batch.jpeg_file, "rb") as fh:
                    fh.seek(lo)
                    buf = buf[:fh.readinto(memoryview(buf.numpy())[:hi - lo])]
            except OSError as exc:
                buf, problem = buf[:0], f"cannot read the shard file again: {exc}"
            spans = [(s - lo, e - lo) for s, e in spans]
        reread, items = batch.jpeg_file is not None, []   # bytes carried from the worker need no check
        for j, ((start, end), size) in enumerate(zip(spans, batch.jpeg_sizes)):
            data = buf[start:end]
            if not reread or (data.numel() == end - start and data[:2].tolist() == [0xFF, 0xD8]):
                items.append((j, data, Eligible(size)))
            else:
                row = batch.rows[batch.jpeg_positions[j]]
                batch.failures.append(Failure(row["key"], batch.shard, "read", problem))
        return items

    def _assemble(self, batch: ShardBatch) -> tuple[ShardBatch, list]:
        items = self._jpeg_items(batch)
        data_of = {j: data for j, data, _ in items}
        decoded_at, decoded, fallback_at, fallback = [], [], [], []
        for j, image in decode_batch(items, self.decoder, self.budget):
            position = batch.jpeg_positions[j]
            if image is not None:
                decoded_at.append(position)
                decoded.append(image)
            elif (pixels := self._fallback(batch, position, bytes(data_of[j].numpy()))) is not None:
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
        batch.jpeg_bytes, batch.jpeg_file, batch.jpeg_positions, batch.cpu_positions = None, None, [], []
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
