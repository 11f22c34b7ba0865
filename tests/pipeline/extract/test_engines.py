"""Every engine through the same scenarios: `local` (this process), `devices` (two CPU processes, as one per
GPU), `ray` (a local Ray; slow) and, where a scenario applies to it, `perturb`, which shares their commit loop
and retrier. The scenarios: the rows of a one-process run; a shard that cannot be opened (recorded in
`failures`, counted unreadable, exit 3, attempted again by the rule of pipeline/extract/retry.py, not
committed, attempted again by the next run); a shard that fails once and is committed by the retry; a round
that raises (every commit fails), retried, its error raised after the last round; `strict`, never retried;
resume. Real components throughout: the tiny open_clip model, Parquet, DuckDB, spawned processes, Ray."""
from dataclasses import dataclass

import numpy as np
import pytest

import imagefactory as f
from artlens import store
from artlens.cli.args import flag
from artlens.errors import UserError
from artlens.pipeline.extract import engines
from artlens.pipeline.extract.config import ENGINE_NAMES, ExtractConfig
from artlens.pipeline.extract.run import run_extract
from artlens.pipeline.failures import SampleError
from artlens.pipeline.models.spec import ModelSpec
from artlens.pipeline.perturb.run import PerturbConfig, run_perturb
from artlens.store.layout import StoreLayout
from conftest import TINY_MODEL, write_tar
from shardkit import make_shards, on_retry, unreadable

SPEC = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)
N, PER = 4, 3                      # shards, images per shard
SLOW = pytest.mark.slow
RAY = pytest.param("ray", marks=SLOW)
# A round of --devices spawns two processes that import torch (about 9 s on 2 cores): one scenario is quick,
# the others, of several rounds each, are marked slow.
EXTRACTORS = ["local", pytest.param("devices", marks=SLOW), RAY]
EVERY = EXTRACTORS + ["perturb"]
# Each Ray round starts an actor that imports torch and builds the model (15-25 s on 2 busy cores). The retry
# rule and the round's commit loop are the same code for every engine (pipeline/extract/retry.py, commit.py),
# so Ray runs the one retry scenario whose failure starts inside its own tasks (a shard its decode tasks
# cannot open, retried twice); a commit that fails once or every time is checked on the other engines.
BUT_RAY = ["local", pytest.param("devices", marks=SLOW), "perturb"]


def _config(shards, root, **kw) -> ExtractConfig:
    kw = {"workers": 0, "progress": False, "batch_size": 2, **kw}
    return ExtractConfig(shards=str(shards), store=str(root), table="t", model=SPEC, **kw)


@dataclass
class Extract:
    """An extraction engine, run through the registry (`engines.run`) as `artlens.extract` runs it."""
    name: str
    settings: dict
    model: object
    table: str = "t"
    order: str = "key"
    per_image: int = 1             # rows per image
    raises_in_rounds: bool = True  # with --devices a round's error is a failed process, not an exception

    def prepare(self, shards, root) -> None:
        """What must be in the store before the run (nothing: an extraction starts from the shards)."""

    def run(self, shards, root, **kw):
        return engines.run(_config(shards, root, **self.settings, **kw))

    def reference(self, shards, root):
        """A one-process run of the same work (other batches), for its rows."""
        run_extract(_config(shards, root, batch_size=3), loaded=self.model)
        return _rows(self, root)


@dataclass
class Perturb(Extract):
    """`artlens perturb` (one deformation, five severities) over the clean table `t` of the same shards."""
    table: str = "t_deformed"
    order: str = "key, severity"
    per_image: int = 5

    def prepare(self, shards, root) -> None:
        run_extract(_config(shards, root), loaded=self.model)

    def run(self, shards, root, **kw):
        kw = {"workers": 0, "progress": False, "batch_size": 4, "deformations": ("blur",), **kw}
        return run_perturb(PerturbConfig(shards=str(shards), store=str(root), table="t", **kw), loaded=self.model)

    def reference(self, shards, root):
        self.prepare(shards, root)
        self.run(shards, root, batch_size=7)
        return _rows(self, root)


KINDS = {
    "local": lambda model: Extract("local", {}, model),
    "devices": lambda model: Extract("devices", {"devices": ("cpu", "cpu")}, model, raises_in_rounds=False),
    "ray": lambda model: Extract("ray", {"engine": "ray"}, model),
    "perturb": lambda model: Perturb("perturb", {}, model),
}


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is an optional engine: pip install 'artlens[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.fixture
def engine(request, tiny_model):
    if request.param == "ray":
        request.getfixturevalue("local_ray")
    return KINDS[request.param](tiny_model)


def _rows(engine, root) -> list[dict]:
    with store.open(root) as s:
        return s.sql(f"SELECT * FROM {engine.table} ORDER BY {engine.order}").to_pylist()


def _same_rows(got: list[dict], expected: list[dict]) -> None:
    """The same rows: every column (key, shard, the shards' .json fields, sizes...) equal, embeddings close."""
    fields = [{k: v for k, v in r.items() if k != "embedding"} for r in got]
    assert fields == [{k: v for k, v in r.items() if k != "embedding"} for r in expected] and len(got) > 0
    assert np.allclose([r["embedding"] for r in got], [r["embedding"] for r in expected], atol=1e-6)


def _failures(table: str, root) -> list[tuple]:
    with store.open(root) as s:
        rows = s.sql(f"SELECT key, stage, shard FROM failures WHERE \"table\" = '{table}'").to_pylist()
    return sorted((r["key"] or "", r["stage"], r["shard"].rsplit("/", 1)[-1]) for r in rows)


# ------------------------------------------------------------------ the registry and its settings
def test_the_registry_runs_every_engine_the_config_accepts(tmp_path):
    assert set(engines.ENGINES) == set(ENGINE_NAMES)
    with pytest.raises(UserError, match="unknown engine 'spark'; choose from local, ray"):
        _config("s", tmp_path, engine="spark")
    refusals = [({"engine": "ray", "devices": ("cpu",)},
                 "--devices is for the local engine; with --engine ray, Ray places the actors"),
                ({"engine": "ray", "decode": "gpu"}, "--engine ray decodes on CPU tasks; use --decode cpu or auto"),
                ({"retries": -1}, "--retries must be 0 or more, got -1"),
                ({"engine": "ray", "actors": 0}, "--actors must be at least 1, got 0"),
                ({"devices": "cpu,cpu"}, "--devices is a tuple of device names")]
    for settings, message in refusals:
        with pytest.raises(UserError) as refused:
            _config("s", tmp_path, **settings)
        assert refused.value.render(flag).startswith(message), settings


# ------------------------------------------------------------------ the scenarios
@pytest.mark.parametrize("engine", ["local", "devices", RAY], indirect=True)
def test_the_rows_are_those_of_a_one_process_run(engine, tmp_path):
    shards = make_shards(tmp_path / "shards", PER, N)
    expected = engine.reference(shards, tmp_path / "ref")
    summary = engine.run(shards, tmp_path / "st")
    assert (summary.images, summary.shards_committed, summary.shards_retried, summary.exit_code) == (N * PER, N, 0, 0)
    assert summary.table_rows == N * PER and summary.tables_rows == {"t": N * PER}
    _same_rows(_rows(engine, tmp_path / "st"), expected)


def _corpus_with_bad_samples(root):
    """N good shards, one with bad samples beside good ones, and one that is not a tar (committed, with a
    `read` failure: what a tar cut short gives)."""
    make_shards(root, PER, N)
    write_tar(root / "00004.tar", [("a.jpg", f.jpeg()), ("b.jpg", f.corrupt_jpeg()), ("c.png", f.png()),
                                   ("d.jpg", f.truncated_jpeg())])
    (root / "00005.tar").write_bytes(b"this is not a tar archive")
    return root


@pytest.mark.parametrize("engine", EVERY, indirect=True)
def test_a_shard_that_cannot_be_opened_is_recorded_retried_and_left_for_the_next_run(engine, tmp_path, tiny_model):
    shards = _corpus_with_bad_samples(tmp_path / "shards")
    engine.prepare(shards, tmp_path / "st")
    unreadable(shards / "00001.tar")
    local = run_extract(_config(shards, tmp_path / "local", retries=0), loaded=tiny_model)
    assert (local.shards_unreadable, local.shards_retried, local.images) == (1, 0, (N - 1) * PER + 2)
    summary = engine.run(shards, tmp_path / "st", retries=2)
    assert (summary.shards_committed, summary.shards_unreadable, summary.shards_retried) == (N + 1, 1, 2)
    assert summary.exit_code == 3 and summary.images == local.images * engine.per_image
    failures = _failures(engine.table, tmp_path / "st")
    assert [x for x in failures if x[2] == "00001.tar"] == [("", "read", "00001.tar")]  # once, read three times
    assert [x[:2] for x in failures] == [x[:2] for x in _failures("t", tmp_path / "local")]
    assert summary.failures == local.failures == len(failures) == 4
    assert all(r["shard"].rsplit("/", 1)[-1] != "00001.tar" for r in _rows(engine, tmp_path / "st"))
    text = "\n".join(summary.lines())
    assert "1 unreadable (retried next run)" in text and "2 shard(s)" in text
    again = engine.run(shards, tmp_path / "st", retries=0)
    assert (again.shards_skipped, again.shards_unreadable, again.shards_retried, again.exit_code) == (N + 1, 1, 0, 3)


@pytest.mark.parametrize("engine", BUT_RAY, indirect=True)
def test_a_shard_that_fails_once_is_committed_by_the_retry(engine, tmp_path):
    shards = make_shards(tmp_path / "shards", PER, N)
    expected = engine.reference(shards, tmp_path / "ref")
    engine.prepare(shards, tmp_path / "st")
    with on_retry(unreadable(shards / "00001.tar")) as retry:
        summary = engine.run(shards, tmp_path / "st")
    assert retry.calls == 1
    assert (summary.shards_committed, summary.shards_unreadable, summary.shards_retried) == (N, 0, 1)
    assert (summary.failures, summary.exit_code, summary.images) == (0, 0, N * PER * engine.per_image)
    assert _failures(engine.table, tmp_path / "st") == []  # the first round's record went with the commit
    _same_rows(_rows(engine, tmp_path / "st"), expected)


def _block_commits(root, table):
    """A file where the table's failures folder goes: every commit of the table fails (NotADirectoryError)."""
    path = StoreLayout.at(root).failures_dir(table)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize("engine", BUT_RAY, indirect=True)
def test_a_round_that_raises_is_retried_and_its_error_raised_after_the_last_round(engine, tmp_path):
    shards = make_shards(tmp_path / "shards", PER, N)
    engine.prepare(shards, tmp_path / "st")
    blocked = _block_commits(tmp_path / "st", engine.table)
    with on_retry(blocked.unlink):
        summary = engine.run(shards, tmp_path / "st", retries=1)
    assert (summary.shards_committed, summary.shards_retried, summary.exit_code) == (N, N, 0)
    assert summary.table_rows == N * PER * engine.per_image
    engine.prepare(shards, tmp_path / "again")
    _block_commits(tmp_path / "again", engine.table)
    if not engine.raises_in_rounds:  # the device processes failed: their shards are not committed
        assert (summary.failed_processes, summary.failed_rounds) == (2, [])
        lost = engine.run(shards, tmp_path / "again", retries=1)
        assert (lost.failed_processes, lost.shards_unreadable, lost.shards_retried, lost.exit_code) == (4, N, N, 3)
        return
    assert len(summary.failed_rounds) == 1 and summary.failed_rounds[0].startswith("NotADirectoryError")
    assert "1 round(s) raised, the last: NotADirectoryError" in "\n".join(summary.lines())
    with on_retry(lambda: None) as retry, pytest.raises(NotADirectoryError):
        engine.run(shards, tmp_path / "again", retries=1)
    assert retry.calls == 1


@pytest.mark.parametrize("engine", EXTRACTORS, indirect=True)
def test_strict_stops_at_the_first_failed_sample_and_is_not_retried(engine, tmp_path):
    shards = make_shards(tmp_path / "shards", PER, 2)
    write_tar(shards / "00002.tar", [("bad.jpg", f.corrupt_jpeg())])
    with on_retry(lambda: None) as retry, pytest.raises(SampleError, match="decode failed for key 'bad'"):
        engine.run(shards, tmp_path / "st", strict=True)
    assert retry.calls == 0


@pytest.mark.parametrize("engine", EXTRACTORS, indirect=True)
def test_resume_skips_the_committed_shards(engine, tmp_path, tiny_model):
    shards = make_shards(tmp_path / "shards", PER, N)
    expected = engine.reference(shards, tmp_path / "ref")
    first = tuple(sorted(str(p) for p in shards.glob("*.tar"))[:2])
    run_extract(_config(shards, tmp_path / "st", only=first), loaded=tiny_model)  # a run that stopped after 2
    summary = engine.run(shards, tmp_path / "st")
    assert (summary.shards_skipped, summary.shards_committed, summary.images) == (2, N - 2, (N - 2) * PER)
    assert summary.table_rows == N * PER and summary.exit_code == 0
    _same_rows(_rows(engine, tmp_path / "st"), expected)
    again = engine.run(shards, tmp_path / "st")
    assert (again.shards_skipped, again.shards_committed, again.table_rows) == (N, 0, N * PER)
    assert "already done (resumed)" in "\n".join(again.lines())
