"""`artlens results`: every probe result of a store as one table (one row per result and metric), e.g. as CSV
to compare models and datasets side by side; the same rows as `SELECT * FROM results` in `artlens sql`."""
from __future__ import annotations

import argparse


def results_args(p: argparse.ArgumentParser) -> None:
    from artlens.cli.args import output_arguments

    p.add_argument("--store", required=True, help="the store whose results/ are listed (a folder or s3://… URL)")
    output_arguments(p)


def results_run(a: argparse.Namespace) -> int:
    from artlens import store

    from artlens.cli.output import write_result

    with store.open(a.store) as s:
        write_result(s.results_table(), a.format, a.out, a.max_rows)
    return 0
