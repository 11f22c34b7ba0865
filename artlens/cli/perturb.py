"""`artlens perturb`: a table's paintings under a suite of deformations."""
from __future__ import annotations

import argparse


# ------------------------------------------------------------------ perturb
def perturb_args(p: argparse.ArgumentParser) -> None:
    from artlens.pipeline.imaging.decode import DEFAULT_MAX_PIXELS

    p.add_argument("--shards", required=True, help="the shards the clean table was extracted from (any SPEC)")
    p.add_argument("--store", required=True)
    p.add_argument("--table", required=True, help="the clean image table (its model and weights are used)")
    p.add_argument("--suite", default="default", help="bundled deformation suite (default) or a YAML path")
    p.add_argument("--out-table", help="deformation table to write (default: TABLE_deformed)")
    p.add_argument("--deformations", help="comma-separated subset of the suite, e.g. blur,noise")
    p.add_argument("--save-examples", type=int, default=0, metavar="N",
                   help="write a contact sheet PNG for each of the first N paintings")
    p.add_argument("--examples-dir", help="folder for the contact sheets (default: STORE/results/examples/OUT)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--workers", type=int, default=2, help="deformation worker processes (0: in-process)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    p.add_argument("--cache-dir", help="open_clip/hub cache directory for weights")
    p.add_argument("--overwrite", action="store_true", help="replace a deformation table made otherwise")
    p.add_argument("--no-progress", action="store_true")


def perturb_run(a: argparse.Namespace) -> int:
    from artlens.pipeline.perturb.run import PerturbConfig, run_perturb

    subset = tuple(d.strip() for d in (a.deformations or "").split(",") if d.strip())
    cfg = PerturbConfig(shards=a.shards, store=a.store, table=a.table, suite=a.suite, out_table=a.out_table,
                        deformations=subset, save_examples=a.save_examples, examples_dir=a.examples_dir,
                        batch_size=a.batch_size, device=a.device, workers=a.workers, max_pixels=a.max_pixels,
                        cache_dir=a.cache_dir, overwrite=a.overwrite, progress=not a.no_progress)
    summary = run_perturb(cfg)
    for line in summary.lines():
        print(line)
    return summary.exit_code
