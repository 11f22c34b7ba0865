"""The retrier's rule (pipeline/extract/retry.py) and the summary's per-shard counts, on their own: rounds
are plain functions here; tests/pipeline/extract/test_engines.py runs the same rule through every engine."""
import pytest

from artlens.errors import UserError
from artlens.pipeline.extract.retry import retry_rounds
from artlens.pipeline.extract.summary import RunSummary, ShardTally
from artlens.pipeline.failures import Failure, SampleError


class Rounds:
    """Commits the shards `commits[n]` names in round n; raises `raises[n]` (after committing) when given."""

    def __init__(self, commits, raises=()):
        self.commits, self.raises, self.seen, self.done = commits, dict(raises), [], set()

    def __call__(self, shards):
        n = len(self.seen)
        self.seen.append(list(shards))
        self.done |= set(self.commits[n]) & set(shards)
        if n in self.raises:
            raise self.raises[n]

    def committed(self, shards):
        return self.done & set(shards)


def test_what_a_round_did_not_commit_is_attempted_again_up_to_retries_more_rounds():
    summary = RunSummary(table="t")
    rounds = Rounds([{"a"}, {"b"}, set(), set()])
    left = retry_rounds(["a", "b", "c"], rounds, rounds.committed, 2, summary)
    assert rounds.seen == [["a", "b", "c"], ["b", "c"], ["c"]] and left == ["c"]
    assert (summary.shards_committed, summary.shards_unreadable, summary.shards_retried) == (2, 1, 3)
    assert summary.exit_code == 3
    none = RunSummary(table="t")
    assert retry_rounds(["a", "b"], Rounds([{"a"}]), lambda s: {"a"} & set(s), 0, none) == ["b"]
    assert (none.shards_retried, none.shards_unreadable) == (0, 1)


def test_a_round_that_raises_is_retried_and_the_last_one_re_raised():
    summary = RunSummary(table="t")
    rounds = Rounds([{"a"}, {"b"}], raises={0: RuntimeError("worker died")})
    assert retry_rounds(["a", "b"], rounds, rounds.committed, 1, summary) == []
    assert rounds.seen == [["a", "b"], ["b"]] and summary.failed_rounds == ["RuntimeError: worker died"]
    assert "1 round(s) raised, the last: RuntimeError: worker died" in summary.retry_lines()[0]
    always = Rounds([set(), set()], raises={0: OSError("disk"), 1: OSError("disk again")})
    with pytest.raises(OSError, match="disk again"):
        retry_rounds(["a"], always, always.committed, 1, RunSummary(table="t"))


@pytest.mark.parametrize("error", [UserError("bad input", argument="shards"),
                                   SampleError(Failure("k", "s.tar", "decode", "corrupt"))])
def test_user_errors_and_strict_sample_errors_are_never_retried(error):
    rounds = Rounds([set(), set()], raises={0: error})
    with pytest.raises(type(error)):
        retry_rounds(["a"], rounds, rounds.committed, 3, RunSummary(table="t"))
    assert len(rounds.seen) == 1


def test_a_shard_attempted_twice_counts_once():
    summary = RunSummary(table="t")
    for attempt in range(2):  # the same shard read in two rounds: only the last attempt counts
        summary.start_shard("s.tar")
        summary.count("s.tar", ShardTally(images=3, failures=1))
        summary.count("s.tar", ShardTally(images=2, gpu_decoded=2))
    summary.start_shard("u.tar")
    summary.count("u.tar", ShardTally(failures=1))
    assert (summary.images, summary.failures, summary.gpu_decoded) == (5, 2, 2)
    summary.absorb({"u.tar": {"images": 4, "failures": 0, "gpu_decoded": 0, "samples_skipped": 1}})
    assert (summary.images, summary.failures, summary.samples_skipped) == (9, 1, 1)
