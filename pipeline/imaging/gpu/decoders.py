"""JPEG decoding on the GPU (nvJPEG through torchvision, or nvImageCodec), for the images it can take.

`gpu_eligible` reads only the header (Pillow, no pixels) and sends to the GPU just what nvJPEG decodes the
same way Pillow does: baseline or progressive JPEG, RGB/YCbCr or greyscale, no EXIF rotation, complete
(ends with the EOI marker: nvJPEG fills a truncated file with grey where Pillow refuses it). Everything
else (PNG, CMYK, rotated, truncated, corrupt...) takes the CPU path, which decodes or reports it, so no
sample is lost. `decode_batch` decodes in chunks bounded by a pixel budget scaled to the device's memory
(`pixel_budget`: GPU memory stays bounded whatever the image sizes, and on a large GPU a whole batch is one
decoder call); when nvJPEG rejects a chunk, each image is retried alone and the ones it still rejects are
handed back for the CPU path.
"""
from __future__ import annotations

import importlib.util
import threading
import warnings
from dataclasses import dataclass

import torch

from artlens.errors import UserError
from artlens.pipeline.imaging.decode import ImageRejected, open_checked
from artlens.pipeline.imaging.gpu.resample import Source

EXIF_ORIENTATION = 0x0112
GPU_MODES = frozenset({"RGB", "L"})
#: Decoded pixels per decoder call: the device's memory divided by BUDGET_SHARE (3 bytes a pixel, so 1/64 of
#: the memory in decoded images per call, with a few calls in flight), within these bounds. On an 80 GB H100
#: that is about 440 M pixels, so a batch of 512 typical art images (0.5 M pixels each) is one call. Fewer,
#: larger calls kept the hardware JPEG engine busier: ViT-B-32 end to end 7,169–8,429 img/s against
#: 6,951–8,022 with 64 M pixels per call, in three device calls (docs/performance.md).
BUDGET_SHARE, MIN_PIXEL_BUDGET, MAX_PIXEL_BUDGET = 192, 32_000_000, 512_000_000


def pixel_budget(device: torch.device) -> int:
    """Decoded pixels one decoder call may produce on `device`."""
    total = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else 0
    return min(max(total // BUDGET_SHARE, MIN_PIXEL_BUDGET), MAX_PIXEL_BUDGET)


@dataclass
class Eligible:
    size: tuple[int, int]          # (width, height) from the header


def gpu_eligible(data: bytes, max_pixels: int) -> Eligible | None:
    """The header facts when nvJPEG may decode `data`, else None (the CPU path decides)."""
    try:
        img = open_checked(data, max_pixels)
    except ImageRejected:
        return None
    if img.format != "JPEG" or img.mode not in GPU_MODES or not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return None
    try:
        if img.getexif().get(EXIF_ORIENTATION, 1) != 1:
            return None
    except Exception:  # unreadable EXIF: let Pillow decide on the CPU path
        return None
    return Eligible(img.size)


def chunks(items: list, budget: int):
    """Consecutive runs of `items` (…, Eligible) whose pixels add up to at most `budget`; an image larger than
    the budget is a run of its own."""
    chunk, pixels = [], 0
    for item in items:
        w, h = item[-1].size
        if chunk and pixels + w * h > budget:
            yield chunk
            chunk, pixels = [], 0
        chunk.append(item)
        pixels += w * h
    if chunk:
        yield chunk


class TorchvisionJpeg:
    """torchvision's nvJPEG binding (decode_jpeg on a device): one decoder per process behind a lock,
    the GPU's hardware JPEG engine where it has one. Also decodes on the CPU (used by the tests)."""
    name = "torchvision nvJPEG"

    def __init__(self, device: torch.device):
        self.device = device

    @staticmethod
    def available(device: torch.device) -> bool:
        return True

    def decode(self, datas: list[torch.Tensor]) -> list[Source | None]:
        """The decoded RGB images on the device; raises RuntimeError when the batch cannot be decoded."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torchvision 0.29 points to TorchCodec
            from torchvision.io import ImageReadMode, decode_jpeg

            return [Source.of_tensor(t) for t in decode_jpeg(datas, mode=ImageReadMode.RGB, device=self.device)]


class NvImageCodec:
    """NVIDIA nvImageCodec (the `gpu-cu13` / `gpu-cu12` extras): the hardware JPEG engine (A100, H100...), CUDA with CPU
    Huffman decoding for what the engine cannot take (progressive JPEGs), one decoder per thread. Its
    output matches Pillow's to within one level (docs/performance.md), where torchvision's differs by up
    to 80 levels on real paintings."""
    name = "nvImageCodec"

    def __init__(self, device: torch.device):
        self.device = device
        self.local = threading.local()

    @staticmethod
    def available(device: torch.device) -> bool:
        return device.type == "cuda" and importlib.util.find_spec("nvidia.nvimgcodec") is not None

    def _decoder(self):
        if not hasattr(self.local, "decoder"):
            from nvidia import nvimgcodec as nv

            kinds = (nv.BackendKind.HW_GPU_ONLY, nv.BackendKind.HYBRID_CPU_GPU)
            self.local.decoder = nv.Decoder(device_id=self.device.index or 0, max_num_cpu_threads=4,
                                            backends=[nv.Backend(k) for k in kinds])
        return self.local.decoder

    def decode(self, datas: list[torch.Tensor]) -> list[Source | None]:
        """The decoded RGB images on the device (None where it failed), left where nvImageCodec put them:
        no per-image call into torch (each would give up and retake the GIL)."""
        from nvidia import nvimgcodec as nv

        stream = torch.cuda.current_stream(self.device).cuda_stream
        images = self._decoder().decode([nv.CodeStream(d.numpy()) for d in datas], cuda_stream=stream)
        return [None if im is None else Source.of_cuda_array(im, self.device) for im in images]


#: JPEG decoders for the device stage, preferred first; `jpeg_decoder` takes the first available one.
#: torchvision leads: in the extractor it ran faster on an H100 (docs/performance.md); nvImageCodec is
#: the one to choose when pixels must match Pillow's.
DECODERS = {"torchvision": TorchvisionJpeg, "nvimgcodec": NvImageCodec}


def jpeg_decoder(device: torch.device, name: str = "auto"):
    if name != "auto":
        cls = DECODERS[name]
        if not cls.available(device):
            raise UserError(f"JPEG decoder {name!r} is not available on {device} "
                            "(nvimgcodec needs CUDA and `pip install 'artlens[gpu-cu13]'`, or gpu-cu12, as "
                            "torch.version.cuda)",
                            argument="jpeg_decoder")
        return cls(device)
    return next(cls(device) for cls in DECODERS.values() if cls.available(device))


def decode_batch(items: list[tuple[int, torch.Tensor, Eligible]], decoder, budget: int):
    """Yield (index, Source of the decoded image on the decoder's device) for decoded items and (index,
    None) for those it refused, in input order. Items are (index, 1-D uint8 CPU tensor of the file, header
    facts); at most `budget` decoded pixels per decoder call."""
    for chunk in chunks(items, budget):
        try:
            images = decoder.decode([d for _, d, _ in chunk])
        except RuntimeError:
            images = []
            for _, data, _ in chunk:
                try:
                    images.append(decoder.decode([data])[0])
                except RuntimeError:
                    images.append(None)
        for (index, _, meta), image in zip(chunk, images):
            if image is not None and (image.height, image.width) != (meta.size[1], meta.size[0]):
                image = None  # nvJPEG and the header disagree: let Pillow decide
            yield index, image


def gpu_decode_available(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available()

