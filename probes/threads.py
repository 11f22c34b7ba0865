"""Every probe runs with the BLAS/OpenMP threads its config allows (`threads`, 1 by default): the matrices are
often small, so threads buy little, cost up to a 100-fold slowdown when cores are oversubscribed (seen here: a
period probe went from 7 s to 300 s), and can change the order of floating-point sums, and with it the last
bits of a result, between thread counts. On a large table (`make bench-probes`) a probe given the machine's
cores runs its matrix products on all of them; at a fixed count its result is the same run after run."""
from __future__ import annotations

import functools

from threadpoolctl import threadpool_limits


def probe_threads(run):
    """Decorator for a probe's `run(store, config)`: BLAS and OpenMP limited to `config.threads`."""
    @functools.wraps(run)
    def wrapped(s, cfg):
        with threadpool_limits(limits=cfg.threads):
            return run(s, cfg)
    return wrapped
