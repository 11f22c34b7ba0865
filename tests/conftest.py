"""Shared fixtures: the tiny open_clip model config, real data paths, tar builders, an extraction runner; and
the CI rule: under CI (the environment variable CI set, as CI services and .ci/run's caller do) a skip fails."""
from __future__ import annotations

import io
import json
import os
import sys
import tarfile
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
TINY_MODEL = str(FIXTURES / "models" / "artlens-tiny-vit.json")
SHARED = REPO.parent / "shared" / "data"
PAINTINGS = SHARED / "paintings"
AI_PASTICHE_NGA = SHARED / "ai-pastiche-nga"
FINDINGS_SUITE = REPO / "probes" / "suites" / "findings-ai-pastiche-nga.yaml"
FINDINGS_DEDUP = 0.95   # the threshold of `make findings`' artlens dedup

sys.path.insert(0, str(FIXTURES))  # for `import imagefactory` and the other kits in tests/fixtures/

# ------------------------------------------------------------------------------------ two workers (make test)
# `make test` runs the suite on two pytest-xdist workers (`-n 2 --dist loadgroup`). The session fixtures built
# from the shared data (the imported store and the findings suite's results: over a minute) would be built
# once per worker; so every test that uses them goes to one worker, as one xdist group.
SHARED_DATA_FIXTURES = frozenset({"shared_store", "findings_results"})


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups (it suffixes the node ids with them)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if SHARED_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("shared-data"))


# ------------------------------------------------------------------------------------ no silent skips in CI
# A skip in CI hides a test that never ran: the shared data missing (`require`), an extra not installed
# (ray, s3fs/moto, triton), mount(8) not permitted (tests/fixtures/mounts.py). The CI machine has all of them
# (root, the dev extra, ../shared/data), so under CI every skip is reported as a failure, with its reason,
# unless the test carries `@pytest.mark.skip_ok_in_ci("why this skip is right on any machine")`. xfail is left
# alone. A module-level skip (`pytest.importorskip` at import) fails the module's collection: its marks cannot
# be read, so put `skip_ok_in_ci` only on tests whose skip happens in setup or in the test.
ALLOW_SKIP_IN_CI = "skip_ok_in_ci"


def in_ci() -> bool:
    """CI is set to anything but empty, 0, false, no or off (CI=true on GitHub Actions, GitLab and most)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no", "off"}


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    return longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)


def _fail_the_skip(report, what: str) -> None:
    report.outcome = "failed"
    report.longrepr = (f"{what} was skipped under CI={os.environ.get('CI')!r}, and a skip in CI is a failure: "
                       f"{_skip_reason(report)}\n(provide what it needs on the CI machine, or mark the test "
                       f"@pytest.mark.{ALLOW_SKIP_IN_CI}(reason) if the skip is right on any machine)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if (report.skipped and not hasattr(report, "wasxfail") and in_ci()
            and item.get_closest_marker(ALLOW_SKIP_IN_CI) is None):
        _fail_the_skip(report, item.nodeid)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    report = yield
    if report.skipped and in_ci():
        _fail_the_skip(report, f"collecting {collector.nodeid}")
    return report


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"needs the shared data at {path} (present in CI and beside developer checkouts)")
    return path


@pytest.fixture
def paintings() -> Path:
    return require(PAINTINGS)


@pytest.fixture(scope="session")
def shared_store(tmp_path_factory):
    """A store with the shared AI-Pastiche and NGA embeddings imported (`ai_pastiche`, `ngd`) and their
    near-duplicates found as `make findings` finds them (`artlens dedup --threshold 0.95`, so both tables
    have `dup_group`), made once per session; probe tests read it only (`probe.run` saves nothing)."""
    from artlens.pipeline.dedup import DedupConfig, run_dedup
    from artlens.pipeline.importer import ImportConfig, run_import

    data = require(AI_PASTICHE_NGA)
    root = tmp_path_factory.mktemp("shared-store") / "store"
    for table, key in (("ai_pastiche", "generated_image"), ("ngd", "objectid")):
        run_import(ImportConfig(source=str(data / f"{table}.parquet"), store=str(root), table=table,
                                embedding_column="ViT-L/14@336px", key_column=key))
        run_dedup(DedupConfig(store=str(root), table=table, threshold=FINDINGS_DEDUP, progress=False))
    return root


@pytest.fixture(scope="session")
def findings_results(shared_store) -> dict:
    """Every result of the findings suite (probes/suites/findings-ai-pastiche-nga.yaml, the suite behind
    docs/findings/ai-pastiche-nga), computed once per session with the current code and the suite's own
    options (nothing saved), by the name `make findings` gives it; but UMAP is left out (`umap: false`: it
    changes no metric, and numba compiles it for ~30 s per process). The steps run on two processes
    (tests/fixtures/findingsrun.py). Tests on the real data read these instead of running the same probes
    again."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from findingsrun import run_step

    from artlens.probes.runner import load_suite

    _, steps = load_suite(FINDINGS_SUITE)
    steps = [(name, {**options, "umap": False} if "umap" in options else options) for name, options in steps]
    # two worker processes (spawned: no forked DuckDB or BLAS state), each probe single-threaded as always
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = pool.map(run_step, [str(shared_store)] * len(steps), *zip(*steps))
        return dict(done)


def findings_result(results: dict, probe: str, table: str, **config):
    """The one result of `findings_results` for this probe, first table and these config values."""
    from artlens.probes.config import COLUMN_LISTS
    from artlens.probes.groups import as_columns

    def same(key, have, want):
        return as_columns(have) == as_columns(want) if key in COLUMN_LISTS else have == want

    hits = [r for r in results.values() if r.probe == probe and r.tables[0] == table
            and all(same(k, r.config.get(k), v) for k, v in config.items())]
    assert len(hits) == 1, f"{len(hits)} {probe} results on {table} with {config} in {FINDINGS_SUITE}"
    return hits[0]


@pytest.fixture(scope="session")
def labelled_store(tmp_path_factory):
    """240 vectors in 4 styles × 2 sources with a period string and a continuous score, a text table
    `prompts` whose class vectors are the style centres, and `art_deformed`, a synthetic deformation table of
    `art` (tests/deformfactory.py) (used by the probe conformance and runner tests)."""
    import numpy as np

    from artlens.store.catalog import TableEntry
    from artlens.store.writer import TableWriter

    root = tmp_path_factory.mktemp("probe-store")
    rng = np.random.default_rng(0)
    dim, n = 16, 240
    centres = rng.normal(size=(4, dim))
    style = np.arange(n) % 4
    source = (np.arange(n) // 4) % 2
    X = centres[style] + 0.8 * rng.normal(size=(n, dim)) + 0.5 * source[:, None]
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    periods = ["XV century", "1701 to 1725", "c. 1810", "1890s"]
    rows = [{"key": f"k{i:03d}", "shard": "syn", "style": f"s{style[i]}", "subject": f"t{i % 3}",
             "period": periods[style[i]], "score": float(X[i, 0] + 0.1 * rng.normal()),
             "source": "ai" if source[i] else "human", "artist": f"a{i % 12}"} for i in range(n)]
    writer = TableWriter(root, TableEntry(name="art", model="m", pretrained="p", preprocess="x", dim=dim))
    writer.commit("syn", rows, X, [])
    from deformfactory import write_deformed  # `art_deformed`: what `artlens perturb` would link to `art`

    write_deformed(root, writer.finish(), [r["key"] for r in rows], X)
    prompt_rows = [{"key": f"s{c}|0|s{c}", "shard": "prompts.yaml", "label": f"s{c}", "template": "{}",
                    "name": f"s{c}", "prompt": f"s{c}"} for c in range(4)]
    text = TableWriter(root, TableEntry(name="prompts", kind="text", model="m", pretrained="p",
                                        preprocess="tokenizer", dim=dim))
    text.commit("prompts.yaml", prompt_rows, (centres / np.linalg.norm(centres, axis=1, keepdims=True))
                .astype(np.float32), [])
    text.finish()
    return root


@pytest.fixture(scope="session")
def tiny_model():
    """The tiny open_clip ViT with seeded random weights, loaded once for the session (fp32, CPU)."""
    from artlens.pipeline.models.spec import ModelSpec
    from artlens.pipeline.models.load import load_model

    return load_model(ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0))


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    """A tar with exactly these members, in this order (names are not sanitised: tests need odd ones)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def meta(**fields) -> bytes:
    return json.dumps(fields).encode()


@pytest.fixture
def extract(tmp_path, tiny_model):
    """Run an extraction in-process with the tiny model: extract(shards, table='t', **config)."""
    from artlens.pipeline.extract.config import ExtractConfig
    from artlens.pipeline.models.spec import ModelSpec
    from artlens.pipeline.extract.run import run_extract

    def run(shards, table="t", store=None, **kwargs):
        kwargs.setdefault("workers", 0)
        kwargs.setdefault("progress", False)
        spec = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)
        cfg = ExtractConfig(shards=str(shards), store=str(store or tmp_path / "store"), table=table,
                            model=spec, **kwargs)
        return run_extract(cfg, loaded=tiny_model)

    return run
