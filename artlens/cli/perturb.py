"""`artlens perturb`: a table's paintings under a suite of deformations."""
from __future__ import annotations

import argparse


# ------------------------------------------------------------------ perturb
def perturb_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import defaults, model_arguments, option
    from artlens.pipeline.perturb.run import PerturbConfig as C

    p.add_argument("--shards", required=True, help="the shards the clean table was extracted from (any SPEC)")
    p.add_argument("--store", required=True, help="the store folder (or URL) of the clean table")
    p.add_argument("--table", required=True, help="the clean image table (its model and weights are used)")
    option(p, C, "suite", help="bundled deformation suite (default) or a YAML path")
    option(p, C, "out_table", help="deformation table to write (default: TABLE_deformed)")
    p.add_argument("--deformations", help="comma-separated subset of the suite, e.g. blur,noise")
    option(p, C, "save_examples", type=int, metavar="N",
           help="write a contact sheet PNG for each of the first N paintings")
    option(p, C, "examples_dir", help="folder for the contact sheets (default: STORE/results/examples/OUT)")
    option(p, C, "batch_size", type=int, help="images per batch (default %(default)s)")
    model_arguments(p, defaults(C), ("device",))
    option(p, C, "workers", type=int, help="deformation worker processes (0: in-process)")
    option(p, C, "max_pixels", type=int, help="refuse images with more pixels (decompression bombs)")
    model_arguments(p, defaults(C), ("cache_dir",))
    option(p, C, "overwrite", action="store_true", help="replace a deformation table made otherwise")
    option(p, C, "retries", type=int, help="rounds more for the shards a round did not commit (default %(default)s)")
    p.add_argument("--no-progress", action="store_true")


def perturb_config(a: argparse.Namespace):
    from artlens.pipeline.perturb.run import PerturbConfig

    subset = tuple(d.strip() for d in (a.deformations or "").split(",") if d.strip())
    return PerturbConfig(shards=a.shards, store=a.store, table=a.table, suite=a.suite, out_table=a.out_table,
                         deformations=subset, save_examples=a.save_examples, examples_dir=a.examples_dir,
                         batch_size=a.batch_size, device=a.device, workers=a.workers, max_pixels=a.max_pixels,
                         cache_dir=a.cache_dir, overwrite=a.overwrite, progress=not a.no_progress,
                         retries=a.retries)


def perturb_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.perturb.run import run_perturb

    summary = run_perturb(perturb_config(a))
    for line in summary.lines():
        print(line)
    return summary.exit_code
