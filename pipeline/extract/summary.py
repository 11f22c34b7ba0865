"""What a run reports: `RunSummary`, the counts every engine and `artlens perturb` share, and `ExtractSummary`.

Counts are kept per shard (`ShardTally`) and totalled: when a shard is attempted again (retry.py), its
earlier attempt stops counting, so a shard read twice is counted once, as the store holds it once. The
shard counts (committed, unreadable, retried) are set by the retrier at the end of the run.

The exit code describes the tables as the run leaves them, not only what this run did: a run that resumes
every shard (embedding nothing new) still exits 3 while its tables' `failures` hold rows for the shards it
covered, and says how many and how to list them (`held_failures`, counted by `recount`).
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from typing import Iterable

import pyarrow.parquet as pq

EXIT_OK, EXIT_SOME_FAILED = 0, 3


def process_age() -> float | None:
    """Seconds since this process started (Linux: /proc), or None where that cannot be read."""
    try:
        with open("/proc/self/stat") as fh:
            started = int(fh.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as fh:
            return max(0.0, float(fh.read().split()[0]) - started)
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class ShardTally:
    """What one attempt at one shard produced."""
    images: int = 0
    failures: int = 0
    gpu_decoded: int = 0
    samples_skipped: int = 0

    @classmethod
    def of(cls, batch) -> "ShardTally":
        """One batch's share (any batch with the fields of commit.ShardPiece)."""
        return cls(len(batch.rows), len(batch.failures), batch.gpu_decoded, batch.skipped)


@dataclass
class RunSummary:
    """The counts of a run that writes one committed part per shard, whatever ran it."""
    table: str
    shards: int = 0
    shards_skipped: int = 0          # already committed by an earlier run (resumed)
    shards_committed: int = 0        # committed by this run
    shards_unreadable: int = 0       # still not committed after the last round (the next run retries them)
    shards_retried: int = 0          # shard attempts after the first round (retry.py)
    failed_rounds: list[str] = field(default_factory=list)  # the errors of rounds that raised and were retried
    images: int = 0
    failures: int = 0
    gpu_decoded: int = 0             # images nvJPEG decoded (extraction with GPU decoding)
    samples_skipped: int = 0         # decoded samples not embedded on purpose (perturb: not rows of the clean table)
    elapsed_s: float = 0.0
    table_rows: int = 0
    tallies: dict[str, ShardTally] = field(default_factory=dict, repr=False)
    #: table → the failure rows it holds for the shards of this run, this run's and earlier runs' (`recount`)
    held_failures: dict[str, int] = field(default_factory=dict)
    store: str = ""                  # the store's folder, for the command that lists the failures

    @property
    def images_per_s(self) -> float:
        return self.images / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def exit_code(self) -> int:
        """3 when samples failed in this run, shards stay unreadable, or the tables still hold failures for
        the shards this run covered (a resumed run over shards whose samples failed earlier); else 0."""
        held = any(self.held_failures.values())
        return EXIT_SOME_FAILED if (self.failures or self.shards_unreadable or held) else EXIT_OK

    def start_shard(self, shard: str) -> None:
        """A new attempt at `shard`: what an earlier attempt counted no longer counts."""
        old = self.tallies.pop(shard, None)
        if old is not None:
            self._add(old, -1)
        self.tallies[shard] = ShardTally()

    def count(self, shard: str, tally: ShardTally) -> None:
        """Add to the current attempt at `shard` (started with `start_shard`)."""
        mine = self.tallies[shard]
        for name in ("images", "failures", "gpu_decoded", "samples_skipped"):
            setattr(mine, name, getattr(mine, name) + getattr(tally, name))
        self._add(tally, 1)

    def absorb(self, tallies: dict[str, dict]) -> None:
        """Take over the shards another process attempted (`--devices`: a device process's summary)."""
        for shard, tally in tallies.items():
            self.start_shard(shard)
            self.count(shard, ShardTally(**tally))

    def _add(self, tally: ShardTally, sign: int) -> None:
        self.images += sign * tally.images
        self.failures += sign * tally.failures
        self.gpu_decoded += sign * tally.gpu_decoded
        self.samples_skipped += sign * tally.samples_skipped

    def recount(self, writers: Iterable, shards: Iterable[str] | None = None, store: str | None = None) -> None:
        """Recount every table from its committed parts (TableWriter.finish) into the summary, and, given
        the run's `shards`, the failure rows each table holds for them (`held_failures`); `store`: the
        store as the command named it (else its folder), for the command that lists the failures."""
        shards = None if shards is None else list(shards)
        for writer in writers:
            entry = writer.finish()
            self.record_table(entry)
            if shards is not None:
                self.store = str(store or writer.layout.root)
                self.held_failures[entry.name] = failures_held(writer, shards)

    def record_table(self, entry) -> None:
        self.table_rows = entry.rows

    def shard_line(self) -> str:
        return (f"shards: {self.shards} total, {self.shards_committed} committed now, {self.shards_skipped} already "
                f"done (resumed), {self.shards_unreadable} unreadable (retried next run)")

    def retry_lines(self) -> list[str]:
        if not (self.shards_retried or self.failed_rounds):
            return []
        raised = (f"; {len(self.failed_rounds)} round(s) raised, the last: {self.failed_rounds[-1]}"
                  if self.failed_rounds else "")
        return [f"retried: {self.shards_retried} shard(s) not committed in a round were attempted again{raised}"]

    def failure_lines(self) -> list[str]:
        """How many failures each table holds for the run's shards, and the command that lists them."""
        lines = [f"failed samples: table {table} holds {held} for the shards of this run (earlier runs' "
                 f"included): artlens sql --store {shlex.quote(self.store)} "
                 f"\"SELECT * FROM failures WHERE \\\"table\\\" = '{table}'\""
                 for table, held in self.held_failures.items() if held]
        if self.failures and not lines:
            lines.append("failed samples: artlens sql --store STORE \"SELECT * FROM failures\"")
        return lines


def failures_held(writer, shards: Iterable[str]) -> int:
    """The failure rows a table (its TableWriter) holds for these shards: each shard's failures part, written
    by the run that last attempted the shard (a shard committed without failures has none)."""
    name = writer.entry.name
    return sum(_first_count(writer.layout.failures_paths(name, u)) for u in shards)


def _first_count(paths) -> int:
    """Rows of the first of a shard's failures parts that exists (its content-id name, then the URL-hash name
    of stores written before content ids); a part that cannot be read counts one, since the table is not clean
    (the writer's recount warns about it, naming `artlens repair`)."""
    for path in paths:
        if path.exists():
            try:
                return pq.ParquetFile(path).metadata.num_rows
            except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
                return 1
    return 0


@dataclass
class ExtractSummary(RunSummary):
    """`artlens extract`'s summary, the same for every engine (`devices` is set with one process per device)."""
    schema_conflicts: dict = field(default_factory=dict)
    tables_rows: dict = field(default_factory=dict)
    decode: str = ""
    startup_s: float = 0.0       # from the start until the first batch arrived (worker spawn, first decode)
    #: where the time before the first batch went: "before the run" (process start to run_extract: Python,
    #: imports, arguments; only in an `artlens` command's process, and where its age can be read), "models" (built, weights loaded,
    #: tables opened), "first batch" (= startup_s: workers started, first shard read and decoded)
    startup: dict = field(default_factory=dict)
    devices: list[str] = field(default_factory=list)
    failed_processes: int = 0    # device processes that did not end with a summary
    thumbnails: int = 0          # thumbnails made after the run (`thumbnails`), of longer side thumbnail_size
    thumbnail_size: int = 0

    def record_table(self, entry) -> None:
        self.table_rows, self.schema_conflicts = entry.rows, entry.conflicts()
        self.tables_rows[entry.name] = entry.rows

    def lines(self) -> list[str]:
        out = [
            f"table {self.table}: {self.images} images embedded, {self.failures} failed, "
            f"{self.images_per_s:.1f} img/s, {self.elapsed_s:.1f} s elapsed",
            self.shard_line(),
            f"decode: {self.decode}; {self.gpu_decoded} of {self.images} images decoded on the GPU"
            if self.gpu_decoded else f"decode: {self.decode}",
        ]
        if self.devices:
            out.insert(1, f"devices: {', '.join(self.devices)}; {self.failed_processes} process(es) failed, "
                          f"{self.shards_retried} shard(s) retried")
        else:
            out[2:2] = self.retry_lines()
        out += [f"table {t} now holds {rows} rows" for t, rows in self.tables_rows.items()]
        out += [f"column {c!r}: {why}" for c, why in sorted(self.schema_conflicts.items())]
        if self.startup:
            out.append("start-up: " + ", ".join(f"{what} {s:.1f} s" for what, s in self.startup.items()
                                                 if s is not None))
        if self.thumbnail_size:
            out.append(f"thumbnails: {self.thumbnails} made of longer side {self.thumbnail_size}")
        return out + self.failure_lines()
