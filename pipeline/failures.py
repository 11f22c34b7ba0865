"""Failure records and the error-handling strategies that stages are given (webdataset's `handler=` idea)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from artlens.errors import UserError


@dataclass(frozen=True)
class Failure:
    key: str | None
    shard: str
    stage: str          # read | metadata | decode | preprocess | embed | write
    error: str

    def as_row(self) -> dict:
        return asdict(self)


class SampleError(UserError):
    """Raised by a strict handler (`strict`): carries the failure that stopped the run."""

    def __init__(self, failure: Failure):
        super().__init__(f"{failure.stage} failed for key {failure.key!r} in {failure.shard}: {failure.error}")
        self.failure = failure


Handler = Callable[[Failure], None]


def collect_into(sink: list) -> Handler:
    """Record and continue: the default. The run never dies on a bad sample."""
    return sink.append


def reraise(failure: Failure) -> None:
    """Stop at the first bad sample (`strict`), for debugging a corpus."""
    raise SampleError(failure)
