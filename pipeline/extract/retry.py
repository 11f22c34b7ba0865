"""The one shard retrier of every engine (local, `--devices`, Ray) and of `artlens perturb`.

The rule. A run makes at most 1 + `retries` rounds. The first round attempts every shard still to do; each
later round attempts again the shards the rounds before did not commit: a shard that could not be read, a
shard whose worker, device process or Ray task failed, a shard whose commit failed. What is still not
committed after the last round is counted unreadable: the run exits 3, the shard's failures are in the
`failures` view, and the next run attempts it again (committed shards are always skipped, so a rerun resumes).

A round that raises (a DataLoader worker that died, a commit that failed) keeps what it committed before it
raised; its other shards are attempted in the next round, and when it was the last round its exception is
re-raised. Three exceptions end the run at once, never retried: a `UserError` (arguments or input the caller
must change: another attempt cannot help), a `SampleError` (`strict` asked to stop at the first failed
sample) and a full disk (`artlens.errors.disk_full`: the next round would fill it again; what was committed
is kept, and the same command resumes once space is freed). With `--devices` a device process that fails is
not an exception of the parent: its shards are simply not committed (the process's own `UserError` or
`SampleError` is raised by the parent, unretried).

Each later round is announced on this module's logger (WARNING, `extra={"shards": [...]}`), before it starts.
"""
from __future__ import annotations

import logging
from typing import Callable

from artlens.errors import UserError, disk_full

from artlens.pipeline.extract.summary import RunSummary
from artlens.pipeline.failures import SampleError

log = logging.getLogger(__name__)

#: exceptions that end a run at once: another attempt cannot help
NOT_RETRIED = (UserError, SampleError)


def retry_rounds(todo: list[str], attempt: Callable[[list[str]], None],
                 committed: Callable[[list[str]], set[str]], retries: int, summary: RunSummary) -> list[str]:
    """Run `attempt(shards)` rounds by the rule above; `committed(shards)` says which of them are committed.
    Sets the summary's shard counts; returns the shards still not committed."""
    left = list(todo)
    for round_no in range(retries + 1):
        if not left:
            break
        if round_no:
            summary.shards_retried += len(left)
            log.warning("attempting %d shard(s) again, round %d of %d", len(left), round_no + 1, retries + 1,
                        extra={"shards": list(left)})
        _round(attempt, left, round_no == retries, summary)
        done = committed(left)
        left = [u for u in left if u not in done]
    summary.shards_committed = len(todo) - len(left)
    summary.shards_unreadable = len(left)
    return left


def _round(attempt: Callable[[list[str]], None], shards: list[str], last: bool, summary: RunSummary) -> None:
    try:
        attempt(shards)
    except NOT_RETRIED:
        raise
    except Exception as exc:
        if last or disk_full(exc):
            raise
        summary.failed_rounds.append(f"{type(exc).__name__}: {' '.join(str(exc).split())}")
        log.warning("a round raised %s: %s; its shards not committed are attempted again", type(exc).__name__, exc)
