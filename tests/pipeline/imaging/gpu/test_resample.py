"""The GPU path's pieces that this CPU-only machine can check: the batched resize+crop Triton kernel (run in
Triton's interpreter on CPU tensors, against torchvision's per-image path), where decoded images are
described (`Source`), the choice of JPEG decoder, CUDA's hardware queues asked for before CUDA starts, the
Parquet encoding of embedding parts, and that writing a table never loads FAISS. nvImageCodec and the
compiled kernel are measured on a GPU by `make bench` (docs/performance.md)."""
import importlib.util
import json
import os
import subprocess
import sys

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from conftest import REPO
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.imaging.gpu.decoders import TorchvisionJpeg, jpeg_decoder
from artlens.pipeline.imaging.gpu.resample import Source, taps
from artlens.store.parts import rows_to_table, write_atomic

KERNEL_CHECK = r"""
import json, torch
from torchvision import transforms as T
from artlens.pipeline.imaging.pixels import _resized_size
from artlens.pipeline.imaging.gpu.resample import Source, resize_crop_batch
g = torch.Generator().manual_seed(0)
out = {}
for interp in ("bicubic", "bilinear"):
    resize = T.Resize(32, interpolation=getattr(T.InterpolationMode, interp.upper()), antialias=True)
    crop = T.CenterCrop(32)
    images = []
    for k, (h, w) in enumerate([(97, 61), (40, 33), (32, 90), (150, 150)]):   # down, up, no-op, square
        hwc = torch.randint(0, 256, (h, w, 3), dtype=torch.uint8, generator=g)
        images.append(hwc.permute(2, 0, 1) if k % 2 else hwc.permute(2, 0, 1).contiguous())  # HWC view / CHW
    ref = torch.stack([crop(resize(im.contiguous())) for im in images])
    sizes = [_resized_size(tuple(im.shape[-2:]), resize) for im in images]
    got = resize_crop_batch([Source.of_tensor(im) for im in images], sizes, (32, 32), interp)
    d = (got.int() - ref.int()).abs()
    out[interp] = {"shape": list(got.shape), "dtype": str(got.dtype), "max": int(d.max()),
                   "frac": float((d > 0).float().mean())}
print(json.dumps(out))
"""


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("triton") is None, reason="needs triton (pip install -e '.[dev]')")
def test_kernel_equals_torchvision_resize_and_crop_within_one_level():
    env = {"TRITON_INTERPRET": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    run = subprocess.run([sys.executable, "-c", KERNEL_CHECK], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    for interp, r in result.items():
        assert r["shape"] == [4, 3, 32, 32] and r["dtype"] == "torch.uint8", interp
        assert r["max"] <= 1, (interp, r)          # float sums in another order: at most one level
        assert r["frac"] < 0.01, (interp, r)


def test_taps_cover_the_filter_support():
    assert taps(1024, 224, "bicubic") == 2 * 10 + 1     # support 2 × 1024/224 = 9.14 input pixels each side
    assert taps(100, 224, "bicubic") == 5                # upscaling: the plain 4-tap cubic, +1 for the offset
    assert taps(1024, 224, "bilinear") == 2 * 5 + 1


class _CudaArray:
    """What nvImageCodec's Image exposes (a plain object here: only the interface is read)."""

    def __init__(self, shape, strides=None, typestr="|u1"):
        self.__cuda_array_interface__ = {"shape": shape, "strides": strides, "typestr": typestr,
                                         "data": (1234, False), "version": 3}


def test_source_reads_hwc_images_and_refuses_what_is_not_rgb():
    device = torch.device("cpu")
    s = Source.of_cuda_array(_CudaArray((480, 640, 3)), device)
    assert (s.height, s.width, s.stride_y, s.stride_x, s.stride_c, s.ptr) == (480, 640, 1920, 3, 1, 1234)
    padded = Source.of_cuda_array(_CudaArray((480, 640, 3), strides=(2048, 3, 1)), device)
    assert padded.stride_y == 2048
    assert Source.of_cuda_array(_CudaArray((480, 640, 1)), device) is None          # grey: CPU path decides
    assert Source.of_cuda_array(_CudaArray((480, 640, 3), typestr="<u2"), device) is None  # 16-bit
    t = torch.zeros(480, 640, 3, dtype=torch.uint8).permute(2, 0, 1)
    view = Source.of_tensor(t)
    assert (view.stride_y, view.stride_x, view.stride_c) == (1920, 3, 1) and view.tensor() is t


def test_jpeg_decoder_choice_and_clear_errors():
    assert isinstance(jpeg_decoder(torch.device("cpu")), TorchvisionJpeg)
    with pytest.raises(ValueError, match="gpu-cu13"):
        jpeg_decoder(torch.device("cpu"), "nvimgcodec")
    with pytest.raises(ValueError, match="unknown jpeg_decoder"):
        ExtractConfig(shards="x", store="y", table="t", jpeg_decoder="libjpeg")


def test_embedding_parts_skip_the_dictionary_and_read_back_exactly(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 64)).astype(np.float32)
    rows = [{"key": f"k{i}", "shard": "s.tar", "style": "x"} for i in range(300)]
    table, _ = rows_to_table(rows, vectors, 64)
    path = tmp_path / "part.parquet"
    write_atomic(table, path)
    meta = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {meta.column(i).path_in_schema: meta.column(i).encodings for i in range(meta.num_columns)}
    assert "BYTE_STREAM_SPLIT" in encodings["embedding.list.element"]
    assert "RLE_DICTIONARY" not in encodings["embedding.list.element"]
    assert "RLE_DICTIONARY" in encodings["style"]              # other columns keep their dictionaries
    back = duckdb.sql(f"SELECT embedding FROM '{path}'").fetchnumpy()["embedding"]
    assert np.array_equal(np.stack(back), vectors)


def test_writing_a_table_does_not_load_faiss():
    code = "import sys, artlens.pipeline.extract.run, artlens.store.writer, artlens.store; print('faiss' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert run.returncode == 0, run.stderr[-1000:]
    assert run.stdout.strip() == "False"


CLAIM = r"""
import os, torch
from artlens.pipeline.imaging.gpu.stage import claim_hardware_queues
print(claim_hardware_queues(), os.environ.get("CUDA_DEVICE_MAX_CONNECTIONS"), torch.cuda.is_initialized())
"""


@pytest.mark.parametrize("preset, expected", [(None, "True 32 False"), ("8", "False 8 False")])
def test_hardware_queues_are_claimed_before_cuda_starts_unless_the_user_chose(preset, expected):
    """32 hardware queues let nvJPEG run beside the model (docs/performance.md); CUDA reads the variable
    when it starts, so artlens sets it first, and leaves a value the user set alone."""
    env = {k: v for k, v in os.environ.items() if k != "CUDA_DEVICE_MAX_CONNECTIONS"}
    if preset:
        env["CUDA_DEVICE_MAX_CONNECTIONS"] = preset
    run = subprocess.run([sys.executable, "-c", CLAIM], capture_output=True, text=True, cwd=REPO, env=env,
                         timeout=120)
    assert run.returncode == 0, run.stderr[-1000:]
    assert run.stdout.strip() == expected


def test_a_run_with_fewer_hardware_queues_is_warned_about(monkeypatch):
    from artlens.pipeline.imaging.gpu.stage import warn_if_few_queues

    monkeypatch.setenv("CUDA_DEVICE_MAX_CONNECTIONS", "8")
    with pytest.warns(RuntimeWarning, match="CUDA_DEVICE_MAX_CONNECTIONS=32"):
        warn_if_few_queues()
