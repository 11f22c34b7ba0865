"""A probe's `threads` option: BLAS/OpenMP limited to it while the probe runs; at a fixed count, the same result."""
import json

import pytest
from threadpoolctl import threadpool_info

from artlens import store
from artlens.probes.config import ConfigError
from artlens.probes.registry import get_probe
from artlens.probes.threads import probe_threads


@pytest.mark.parametrize("threads", [1, 2])
def test_blas_runs_with_the_configured_threads(threads):
    linear = get_probe("linear")
    cfg = linear.Config.from_dict({"table": "art", "label": "style", "threads": threads})
    seen = probe_threads(lambda s, c: [lib["num_threads"] for lib in threadpool_info()
                                       if lib["user_api"] == "blas"])(None, cfg)
    assert seen and set(seen) == {threads}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_threads_must_be_a_whole_number_of_at_least_one(bad):
    with pytest.raises(ConfigError, match="threads must be a whole number"):
        get_probe("linear").Config.from_dict({"table": "art", "label": "style", "threads": bad})


def test_two_threads_give_the_same_result_twice_and_record_the_count(labelled_store):
    linear = get_probe("linear")
    cfg = linear.Config.from_dict({"table": "art", "label": "subject", "n_boot": 50, "threads": 2})
    with store.open(labelled_store) as s:
        first, second = linear.run(s, cfg), linear.run(s, cfg)
    one, two = json.loads(first.to_json()), json.loads(second.to_json())
    assert one["config"]["threads"] == 2
    assert one["metrics"] == two["metrics"]
