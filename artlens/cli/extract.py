"""`artlens extract`: shards through a model into a store table."""
from __future__ import annotations

import argparse


# ------------------------------------------------------------------ extract
def extract_args(p: argparse.ArgumentParser) -> None:
    from artlens.pipeline.extract.config import DECODE_NAMES, JPEG_DECODER_NAMES
    from artlens.pipeline.models.spec import PRECISION_NAMES
    from artlens.pipeline.imaging.decode import DEFAULT_MAX_PIXELS

    p.add_argument("--shards", required=True, help="folder of .tar, brace pattern, glob, or list file")
    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True, help="table to write (with --models: the prefix of each table)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--model", default="ViT-B-32", help="open_clip model name or JSON model config path")
    which.add_argument("--models", help="several models over one decode, MODEL:PRETRAINED,...; one table "
                                        "each, named TABLE_<model>_<weights>")
    p.add_argument("--pretrained", default="openai", help="open_clip tag, checkpoint path, or 'random'")
    p.add_argument("--seed", type=int, default=0, help="seed for --pretrained random")
    p.add_argument("--batch-size", type=auto_int, default=None, help="images per batch (default auto: 512 on "
                                                                     "CUDA, 64 on CPU)")
    p.add_argument("--precision", default="auto", choices=("auto",) + PRECISION_NAMES,
                   help="auto: fp16 on CUDA, fp32 on CPU")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--decode", default="auto", choices=DECODE_NAMES,
                   help="auto: JPEGs decoded and resized on the GPU (nvJPEG) when the model runs on CUDA; "
                        "other images always by Pillow on the CPU")
    p.add_argument("--decode-threads", type=int, default=2, help="threads feeding nvJPEG (with GPU decoding)")
    p.add_argument("--jpeg-decoder", default="auto", choices=JPEG_DECODER_NAMES,
                   help="GPU JPEG decoder: auto = torchvision's nvJPEG (fastest here); nvimgcodec "
                        "(pip install 'artlens[gpu-cu13]' or gpu-cu12) gives pixels within one level of Pillow's")
    p.add_argument("--devices", help="one process per device: 'all' (every CUDA GPU), '0,1' (CUDA ids), or "
                                     "names such as cpu,cpu; shard i goes to device i mod N")
    p.add_argument("--engine", default="local", choices=("local", "ray"),
                   help="ray: Ray Data (CPU decode tasks, model actor pool, commits by this process)")
    p.add_argument("--address", help="with --engine ray: the cluster to join (default: start a local Ray)")
    p.add_argument("--actors", type=int, help="with --engine ray: model actors (default: one per GPU, or 1)")
    p.add_argument("--retries", type=int, default=1, help="with --devices: rounds of retrying the shards of a "
                                                          "failed process (default 1)")
    p.add_argument("--workers", type=auto_int, default=None,
                   help="decode worker processes (0: in-process; default auto: CPU cores - 1, or - 2 with "
                        "GPU decoding)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                   help="refuse images with more pixels (decompression bombs)")
    p.add_argument("--cache-dir", help="open_clip/hub cache directory for weights")
    p.add_argument("--overwrite", action="store_true", help="replace a table made with other settings")
    p.add_argument("--strict", action="store_true", help="stop at the first failed sample")
    p.add_argument("--no-progress", action="store_true")


def auto_int(text: str) -> int | None:
    return None if text == "auto" else int(text)


def extract_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.extract.config import ExtractConfig
    from artlens.pipeline.models.spec import ModelSpec, parse_models
    from artlens.pipeline.extract.run import run_extract

    spec = ModelSpec(model=a.model, pretrained=a.pretrained, precision=a.precision, device=a.device,
                     seed=a.seed, cache_dir=a.cache_dir)
    cfg = ExtractConfig(shards=a.shards, store=a.store, table=a.table, model=spec,
                        models=parse_models(a.models, spec) if a.models else (), batch_size=a.batch_size,
                        workers=a.workers, decode=a.decode, decode_threads=a.decode_threads,
                        jpeg_decoder=a.jpeg_decoder, max_pixels=a.max_pixels, overwrite=a.overwrite,
                        strict=a.strict, progress=not a.no_progress)
    if a.engine == "ray":
        if a.devices:
            raise ValueError("--devices is for the local engine; with --engine ray, Ray places the actors")
        from artlens.pipeline.extract.engines.raydata import run_with_ray
        summary = run_with_ray(cfg, address=a.address, actors=a.actors)
    elif a.devices:
        from artlens.pipeline.extract.engines.devices import parse_devices, run_on_devices
        summary = run_on_devices(cfg, parse_devices(a.devices), retries=a.retries)
    else:
        summary = run_extract(cfg)
    for line in summary.lines():
        print(line)
    return summary.exit_code
