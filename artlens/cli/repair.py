"""`artlens repair`: rebuild a store's catalog from its parts, move unreadable files aside, recount."""
from __future__ import annotations

import argparse


def repair_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True, help="the store to repair (a local folder)")


def repair_config(a: argparse.Namespace):
    from artlens.store.repair import RepairConfig

    return RepairConfig(store=a.store)


def repair_run(a: argparse.Namespace) -> int:
    from artlens.store.repair import repair

    for line in repair(repair_config(a)).lines():
        print(line)
    return 0
