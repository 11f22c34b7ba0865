"""`artlens perturb`: the paintings of a clean table under a suite of deformations, embedded with the clean
table's own model into a linked table, one committed part per shard (a killed run resumes).

The linked table (kind `deformation`, catalog `parent` = the clean table) has one row per painting ×
deformation × severity 1..5: `key` (the clean row's key, so it joins to the clean table), `shard`,
`deformation`, `severity`, `level` (the suite's parameter value), `ssim` (clean vs deformed, pixel space)
and `embedding`. Its catalog `preprocess` names the suite and its digest, so a table only grows with the
same deformations; `overwrite` replaces it. The shards go through the commit loop and the retrier that
extraction uses (pipeline/extract/commit.py, retry.py): the same counts, the same rule for retrying.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tqdm import tqdm

from artlens import store
from artlens.store.catalog import TableEntry
from artlens.store.layout import StoreLayout
from artlens.store.writer import TableWriter

from artlens import __version__
from artlens.errors import UserError
from artlens.pipeline.extract.commit import OutputTable, ShardCommits, committed_among
from artlens.pipeline.extract.retry import retry_rounds
from artlens.pipeline.extract.summary import RunSummary
from artlens.pipeline.perturb.contactsheet import write_examples
from artlens.pipeline.imaging.decode import DEFAULT_MAX_PIXELS
from artlens.pipeline.perturb.suite import SEVERITIES, Suite, load_suite
from artlens.pipeline.extract.run import expected_images
from artlens.pipeline.models.load import LoadedModel, ModelError, load_for_table
from artlens.pipeline.perturb.loader import PerturbJob, perturb_loader
from artlens.pipeline.shards.spec import expand_shards


class PerturbError(UserError):
    """Input `artlens perturb` refuses (the message says what to do)."""


@dataclass(frozen=True)
class PerturbConfig:
    shards: str
    store: str
    table: str                           # the clean table (made by `artlens extract` from these shards)
    suite: str = "default"               # a bundled suite name or a YAML path
    out_table: str | None = None         # default: <table>_deformed
    deformations: tuple[str, ...] = ()   # a subset of the suite (empty: all)
    save_examples: int = 0               # contact sheets for this many paintings
    examples_dir: str | None = None      # default: the store's results/examples/<out_table>/
    batch_size: int = 64
    device: str = "auto"
    workers: int = 2
    max_pixels: int = DEFAULT_MAX_PIXELS
    cache_dir: str | None = None
    overwrite: bool = False
    progress: bool = True
    retries: int = 1                     # rounds more for the shards a round did not commit (extract/retry.py)

    def __post_init__(self) -> None:
        for name, least in (("batch_size", 1), ("workers", 0), ("save_examples", 0), ("max_pixels", 1),
                            ("retries", 0)):
            if getattr(self, name) < least:
                raise UserError(f"{name} must be at least {least}, got {getattr(self, name)}", argument=name)
        if self.output == self.table:
            raise UserError(f"`out_table` must differ from `table` ({self.table!r})", argument=("out_table", "table"))

    @property
    def output(self) -> str:
        return self.out_table or f"{self.table}_deformed"


@dataclass
class PerturbSummary(RunSummary):
    """`artlens perturb`'s summary: the counts of every run (summary.py) and the paintings and contact sheets."""
    deformations: int = 0
    paintings: int = 0                   # clean paintings the deformed images came from
    examples: list[Path] = field(default_factory=list)

    @property
    def not_in_table(self) -> int:
        """Decoded samples that are not rows of the clean table (skipped)."""
        return self.samples_skipped

    def lines(self) -> list[str]:
        out = [f"table {self.table}: {self.images} deformed images of {self.paintings} paintings "
               f"({self.deformations} deformations x {len(SEVERITIES)} severities) embedded, {self.failures} failed, "
               f"{self.images_per_s:.1f} img/s, {self.elapsed_s:.1f} s elapsed",
               self.shard_line(), *self.retry_lines(),
               f"table now holds {self.table_rows} rows"]
        if self.not_in_table:
            out.append(f"{self.not_in_table} samples of the shards are not rows of the clean table (skipped)")
        if self.examples:
            out.append(f"{len(self.examples)} contact sheet(s) in {self.examples[0].parent}")
        return out + self.failure_lines()


def deformation_entry(cfg: PerturbConfig, clean: TableEntry, suite: Suite) -> TableEntry:
    return TableEntry(
        name=cfg.output, kind="deformation", parent=clean.name, model=clean.model, model_ref=clean.model_ref,
        pretrained=clean.pretrained, checkpoint_sha256=clean.checkpoint_sha256,
        preprocess=f"{suite.describe()}, then: {clean.preprocess}", dim=clean.dim, dtype=clean.dtype,
        source=cfg.shards, artlens_version=__version__)


def _clean_table(cfg: PerturbConfig) -> tuple[TableEntry, frozenset[str]]:
    with store.open(cfg.store) as s:
        entry = s.entry(cfg.table)
        if entry.kind != "image" or entry.parent:
            raise PerturbError(f"table {cfg.table!r} is a {entry.kind!r} table; perturb needs the image table "
                               "that `artlens extract` made from these shards")
        keys = frozenset(s.sql(f'SELECT key FROM "{cfg.table}"').column("key").to_pylist())
    if not keys:
        raise PerturbError(f"table {cfg.table!r} has no rows to deform")
    return entry, keys


def _check_model(loaded: LoadedModel, clean: TableEntry) -> LoadedModel:
    made = {"model": clean.model, "pretrained": clean.pretrained, "dim": clean.dim}
    have = {"model": loaded.name, "pretrained": loaded.weights.label, "dim": loaded.dim}
    if made != have:
        raise ModelError(f"the model given ({have}) is not the one table {clean.name!r} was made with ({made})")
    return loaded


def _embed_shards(todo: list[str], job: PerturbJob, loaded: LoadedModel, table: OutputTable,
                  summary: PerturbSummary, cfg: PerturbConfig) -> None:
    """Deform, embed and commit every shard in `todo` (retried by the rule of extract/retry.py), with a
    progress bar over deformed images."""
    expected = expected_images(todo)
    per_image = len(job.suite.deformations) * len(SEVERITIES)
    bar = tqdm(total=None if expected is None else expected * per_image, unit="img",
               desc=f"perturb {cfg.output}", disable=not cfg.progress, smoothing=0.1)
    paintings: set[tuple[str, str]] = set()

    def attempt(shards: list[str]) -> None:
        with ShardCommits([table], summary) as loop:
            for batch in perturb_loader(shards, job, cfg.workers, pin_memory=loaded.device.type == "cuda"):
                loop.add(batch, lambda _table, pixels=batch.pixels: loaded.embed(pixels))
                paintings.update((batch.shard, row["key"]) for row in batch.rows)
                summary.paintings = len(paintings)
                bar.update(len(batch.rows))
                bar.set_postfix(failed=summary.failures, shards=f"{loop.finished}/{len(shards)}")

    with bar:
        retry_rounds(todo, attempt, partial(committed_among, [table]), cfg.retries, summary)


def run_perturb(cfg: PerturbConfig, loaded: LoadedModel | None = None) -> PerturbSummary:
    suite = load_suite(cfg.suite).select(cfg.deformations)
    urls = expand_shards(cfg.shards)
    clean, keys = _clean_table(cfg)
    loaded = _check_model(loaded or load_for_table(clean, cfg.device, cfg.cache_dir), clean)
    writer = TableWriter(cfg.store, deformation_entry(cfg, clean, suite), overwrite=cfg.overwrite)
    table = OutputTable(writer, loaded.dim)
    table.mark_done(urls)
    todo = [u for u in urls if u not in table.done]
    summary = PerturbSummary(table=cfg.output, deformations=len(suite.deformations), shards=len(urls),
                             shards_skipped=len(urls) - len(todo))
    start = time.perf_counter()
    if todo:
        _embed_shards(todo, PerturbJob(suite, loaded.preprocess, keys, cfg.max_pixels, cfg.batch_size), loaded,
                      table, summary, cfg)
    summary.elapsed_s = time.perf_counter() - start
    if cfg.save_examples:
        folder = Path(cfg.examples_dir) if cfg.examples_dir else StoreLayout.at(cfg.store).examples_dir(cfg.output)
        summary.examples = write_examples(cfg.shards, keys, suite, cfg.save_examples, folder, cfg.max_pixels)
        if not cfg.examples_dir:
            StoreLayout.at(cfg.store).push(*map(Path, summary.examples))
    summary.recount([writer], urls, cfg.store)
    return summary
