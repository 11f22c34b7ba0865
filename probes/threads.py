"""Every probe runs with single-threaded BLAS/OpenMP: the matrices are small, so threads buy little, cost up
to a 100-fold slowdown when cores are oversubscribed (seen here: a period probe went from 7 s to 300 s), and
could change the order of floating-point sums, and with it the last bits of a result, between machines."""
from __future__ import annotations

import functools

from threadpoolctl import threadpool_limits


def single_threaded(run):
    """Decorator for a probe's `run(store, config)`."""
    @functools.wraps(run)
    def wrapped(s, cfg):
        with threadpool_limits(limits=1):
            return run(s, cfg)
    return wrapped
