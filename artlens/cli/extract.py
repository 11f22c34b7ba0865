"""`artlens extract`: shards through a model into a store table."""
from __future__ import annotations

import argparse


# ------------------------------------------------------------------ extract
def extract_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import default, model_arguments, option
    from artlens.pipeline.extract.config import DECODE_NAMES, ENGINE_NAMES, JPEG_DECODER_NAMES, ExtractConfig as C

    p.add_argument("source", nargs="?", metavar="SOURCE",
                   help="a folder of images, read in place (or any --shards SPEC)")
    p.add_argument("--shards", help="folder of .tar, brace pattern, glob, or list file; or a folder of images")
    p.add_argument("--store", required=True, help="the store folder (or URL) to write the table into")
    p.add_argument("--table", required=True, help="table to write (with --models: the prefix of each table)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--models", help="several models over one decode, MODEL:PRETRAINED,...; one table "
                                        "each, named TABLE_<model>_<weights>")
    model_arguments(p, default(C, "model"), into={"model": which})
    option(p, C, "batch_size", type=auto_int, help="images per batch (default auto: 512 on CUDA, 64 on CPU)")
    option(p, C, "decode", choices=DECODE_NAMES,
           help="auto: JPEGs decoded and resized on the GPU (nvJPEG) when the model runs on CUDA; "
                "other images always by Pillow on the CPU")
    option(p, C, "decode_threads", type=int, help="threads feeding nvJPEG (with GPU decoding)")
    option(p, C, "jpeg_decoder", choices=JPEG_DECODER_NAMES,
           help="GPU JPEG decoder: auto = torchvision's nvJPEG (fastest here); nvimgcodec "
                "(pip install 'artlens[gpu-cu13]' or gpu-cu12) gives pixels within one level of Pillow's")
    p.add_argument("--devices", help="one process per device: 'all' (every CUDA GPU), '0,1' (CUDA ids), or "
                                     "names such as cpu,cpu; shard i goes to device i mod N")
    option(p, C, "engine", choices=ENGINE_NAMES,
           help="ray: Ray Data (CPU decode tasks, model actor pool, commits by this process)")
    option(p, C, "address", help="with --engine ray: the cluster to join (default: start a local Ray)")
    option(p, C, "actors", type=int, help="with --engine ray: model actors (default: one per GPU, or 1)")
    option(p, C, "retries", type=int, help="rounds more for the shards a round did not commit: unreadable, or "
                                           "their worker, process or task failed (default %(default)s)")
    option(p, C, "workers", type=auto_int,
           help="decode worker processes (0: in-process; default auto: CPU cores - 1, or - 2 with GPU decoding)")
    option(p, C, "max_pixels", type=int, help="refuse images with more pixels (decompression bombs)")
    option(p, C, "max_member_bytes", type=int,
           help="refuse tar members declaring more bytes, unread (a failure row; default %(default)s = 512 MiB)")
    option(p, C, "overwrite", action="store_true", help="replace a table made with other settings")
    option(p, C, "strict", action="store_true", help="stop at the first failed sample")
    option(p, C, "thumbnails", type=int, metavar="N",
           help="after the run, cache in the store the thumbnails of longer side N (16..2048) of the table's rows "
                "that have none, for the explorer and contact sheets (default: none)")
    option(p, C, "folder", action="store_const", const=True,
           help="read SOURCE as a folder of images even if it holds .tar files (default: a directory without "
                ".tar files at its top is one)")
    option(p, C, "metadata", help="folder of images: CSV/JSONL joined on relative path or file name")
    option(p, C, "metadata_encoding", help="folder of images: encoding of --metadata, e.g. latin-1, cp1252 "
                                           "(default: by byte-order mark, else UTF-8)")
    option(p, C, "metadata_types", action="append", metavar="COL=TYPE,...",
           help="folder of images: force metadata column types (str, int, float, bool), e.g. rating=float; "
                "repeatable")
    option(p, C, "shard_size", type=int, help="folder of images: files per virtual shard, the unit of commit "
                                              "and resume (default %(default)s)")
    p.add_argument("--no-progress", action="store_true")


def named_models(a: argparse.Namespace) -> list[str]:
    """The models the arguments name (`--model`, or each of `--models`)."""
    from artlens.cli.args import default, model_spec
    from artlens.pipeline.extract.config import ExtractConfig
    from artlens.pipeline.models.spec import parse_models

    spec = model_spec(a, default(ExtractConfig, "model"))
    return [m.model for m in (parse_models(a.models, spec) if a.models else [spec])]


def leave_out_unused_packages(models: list[str]) -> list[str]:
    """Leave timm and transformers out of this process (and the processes it starts) when none of the
    command's models needs them: open_clip imports both whenever they are installed (artlens/startup.py)."""
    from artlens import startup
    from artlens.pipeline.models.modelconfig import unused_packages

    return startup.leave_out(unused_packages(models))


def auto_int(text: str) -> int | None:
    return None if text == "auto" else int(text)


def extract_config(a: argparse.Namespace):
    """The ExtractConfig the arguments name, the engine, devices and Ray flags included."""
    from artlens.cli.args import default, model_spec
    from artlens.pipeline.extract.config import ExtractConfig
    from artlens.pipeline.extract.engines.devices import parse_devices
    from artlens.errors import UserError
    from artlens.pipeline.models.spec import parse_models

    if (a.source is None) == (a.shards is None):
        raise UserError("name the input once: SOURCE (a folder of images) or --shards SPEC", argument="shards")
    spec = model_spec(a, default(ExtractConfig, "model"))
    return ExtractConfig(shards=a.shards or a.source, store=a.store, table=a.table, model=spec,
                         models=parse_models(a.models, spec) if a.models else (), batch_size=a.batch_size,
                         workers=a.workers, decode=a.decode, decode_threads=a.decode_threads,
                         jpeg_decoder=a.jpeg_decoder, max_pixels=a.max_pixels,
                         max_member_bytes=a.max_member_bytes, overwrite=a.overwrite,
                         strict=a.strict, progress=not a.no_progress, engine=a.engine,
                         devices=tuple(parse_devices(a.devices)) if a.devices else (), retries=a.retries,
                         address=a.address, actors=a.actors, folder=a.folder, metadata=a.metadata,
                         metadata_encoding=a.metadata_encoding, metadata_types=a.metadata_types,
                         shard_size=a.shard_size, thumbnails=a.thumbnails)


def ends_at_once(a: argparse.Namespace) -> bool:
    """An extraction has closed every part, catalog and index it wrote when its summary prints, so the
    process may end there (`Command.ends_at_once`): its teardown took about 0.3 s with CUDA, more with the
    models loaded, on the H200 machine (docs/performance.md). Not with Ray, whose exit handlers stop the
    cluster it started."""
    return a.engine != "ray"


def extract_run(a: argparse.Namespace) -> int:
    from artlens import startup

    if startup.COMMAND_PROCESS:  # the process is this command (not a caller of main(argv), such as a test)
        leave_out_unused_packages(named_models(a))  # before anything imports open_clip
    cfg = extract_config(a)
    from artlens.pipeline.extract.engines import run

    summary = run(cfg)
    for line in summary.lines():
        print(line)
    return summary.exit_code
