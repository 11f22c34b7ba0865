"""`--engine ray`: the extraction on Ray Data, on a local Ray instance with CPU resources and the tiny model.
Its table must equal the local engine's row for row; committed shards are skipped (resume); bad samples
and unreadable shards end as failures exactly as with the local engine."""
import numpy as np
import pytest

import imagefactory as f
from artlens import store
from conftest import TINY_MODEL, write_tar
from artlens.pipeline.extract.config import ExtractConfig
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.extract.run import run_extract
from shardkit import make_shards, rows

ray = pytest.importorskip("ray", reason="Ray is an optional engine: pip install 'artlens[ray]'")
from artlens.pipeline.extract.engines.raydata import run_with_ray

pytestmark = pytest.mark.slow
SPEC = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _cfg(shards, root, **kw):
    return ExtractConfig(shards=str(shards), store=str(root), table="t", model=SPEC, workers=0, progress=False,
                         batch_size=4, **kw)


def test_ray_engine_writes_the_rows_of_the_local_engine_and_resumes(tmp_path):
    shards = make_shards(tmp_path / "shards")
    run_extract(_cfg(shards, tmp_path / "local"))
    first = sorted(str(p) for p in shards.glob("*.tar"))[:4]
    run_extract(_cfg(shards, tmp_path / "ray", only=tuple(first)))   # a run that stopped after 4 shards
    summary = run_with_ray(_cfg(shards, tmp_path / "ray"))
    assert (summary.shards_skipped, summary.shards_committed, summary.images) == (4, 6, 36)
    assert summary.table_rows == 60 and summary.exit_code == 0
    (local, n1, _), (via_ray, n2, d2) = rows(tmp_path / "local"), rows(tmp_path / "ray")
    assert n1 == n2 == d2 == 60 and [r["key"] for r in local] == [r["key"] for r in via_ray]
    assert [r["shard_no"] for r in local] == [r["shard_no"] for r in via_ray]
    assert np.allclose([r["embedding"] for r in local], [r["embedding"] for r in via_ray], atol=1e-6)


def test_ray_engine_reports_failures_like_the_local_engine(tmp_path):
    write_tar(tmp_path / "s" / "00000.tar", [("a.jpg", f.jpeg()), ("b.jpg", f.corrupt_jpeg()),
                                             ("c.png", f.png()), ("d.jpg", f.truncated_jpeg())])
    (tmp_path / "s" / "00001.tar").write_bytes(b"this is not a tar archive")
    local = run_extract(_cfg(tmp_path / "s", tmp_path / "local"))
    remote = run_with_ray(_cfg(tmp_path / "s", tmp_path / "ray"))
    assert (remote.images, remote.failures, remote.exit_code) == (local.images, local.failures, 3) == (2, 3, 3)
    assert (remote.shards_committed, remote.shards_unreadable) == (local.shards_committed, local.shards_unreadable)
    q = "SELECT key, stage FROM failures ORDER BY key NULLS LAST"
    with store.open(tmp_path / "local") as a, store.open(tmp_path / "ray") as b:
        assert a.sql(q).to_pylist() == b.sql(q).to_pylist()
