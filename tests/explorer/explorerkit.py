"""Fixtures of the explorer tests (imported by them; a second conftest.py would clash with tests/conftest.py):
21 procedural paintings in 2 shards embedded by the tiny model (random weights), three styles, one of them the
hostile label `<script>alert(1)</script>`; a linear probe result with its rows; a deformation table of two
deformations with one contact sheet, one saliency map of a painting; an imported table without
images whose `link` column names image URLs; and the real app served by uvicorn on a free loopback port in a
thread of the test process."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
import pytest

import imagefactory as f
from conftest import TINY_MODEL, meta, write_tar

HOSTILE = "<script>alert(1)</script>"
STYLES = ("cubism", "baroque", HOSTILE)
PER_SHARD, SHARDS = 11, 2


def _key(s: int, i: int) -> str:
    return f"p{s}_{i:02d}"


@pytest.fixture(scope="session")
def explorer_store(tmp_path_factory, tiny_model):
    from artlens.pipeline.extract.config import ExtractConfig
    from artlens.pipeline.extract.run import run_extract
    from artlens.pipeline.models.spec import ModelSpec
    from artlens.probes.runner import run_probe
    from artlens.store.catalog import TableEntry
    from artlens.store.writer import TableWriter

    base = tmp_path_factory.mktemp("explorer")
    shards, root = base / "shards", base / "store"
    n = 0
    for s in range(SHARDS):
        members = []
        for i in range(PER_SHARD if s == 0 else PER_SHARD - 1):
            style = STYLES[n % 3]
            members += [(f"{_key(s, i)}.jpg", f.jpeg(200 + 8 * i, 150, color=(40 + 90 * (n % 3), 20 * i, 60 * s))),
                        (f"{_key(s, i)}.json", meta(style=style, year=1600 + 17 * n, title=f"painting {n} {style}"))]
            n += 1
        write_tar(shards / f"{s:05d}.tar", members)
    spec = ModelSpec(model=TINY_MODEL, pretrained="random", device="cpu", seed=0)
    run_extract(ExtractConfig(shards=str(shards), store=str(root), table="paintings", model=spec, workers=0,
                              progress=False), loaded=tiny_model)
    run_probe(root, "linear", {"table": "paintings", "label": "style", "Cs": (1.0,), "n_boot": 40, "folds": 3,
                               "inner_folds": 2, "min_count": 3})
    _painting_extras(shards, root, tiny_model)
    # an imported table: embeddings without images, a column of image URLs (unreachable: the page falls back
    # to a metadata card)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(12, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    rows = [{"key": f"nga{i}", "shard": "nga.parquet", "title": f"NGA work {i}" if i else HOSTILE,
             "link": f"http://127.0.0.1:9/nga/{i}.jpg"} for i in range(12)]
    writer = TableWriter(root, TableEntry(name="nga", model="imported model", pretrained="imported",
                                          preprocess="unknown", dim=16, image_url_column="link"))
    writer.commit("nga.parquet", rows, X, [])
    writer.finish()
    return root


#: The deformations of the fixture's deformation table (two cheap ones of the bundled default suite), the one
#: painting with its contact sheet saved by the run, and the one with a saliency map.
DEFORMED, DEFORMATIONS, SHEET_KEY = "paintings_deformed", ("blur", "noise"), "p0_00"
SALIENT_KEY, SALIENT_TEXT = "p0_02", "a <b>cubist</b> painting"


def _painting_extras(shards, root, tiny_model) -> None:
    """What a painting's page shows where present: a deformation table of `paintings` (`artlens perturb`,
    with the contact sheet of its first painting) and one saliency map (`artlens saliency --key`)."""
    from artlens.pipeline.perturb.run import PerturbConfig, run_perturb
    from artlens.probes.interpret.config import SaliencyConfig
    from artlens.probes.interpret.saliency import run_saliency
    from artlens.probes.interpret.source import ModelSource

    run_perturb(PerturbConfig(shards=str(shards), store=str(root), table="paintings", out_table=DEFORMED,
                              deformations=DEFORMATIONS, save_examples=1, workers=0, device="cpu", progress=False),
                loaded=tiny_model)
    run_saliency(SaliencyConfig(image=None, key=SALIENT_KEY, text=SALIENT_TEXT, out=None, method="rollout",
                                source=ModelSource(store=str(root), table="paintings", device="cpu")), tiny_model)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """A uvicorn server of the explorer app in a thread; `url` is its base address."""

    def __init__(self, root):
        import uvicorn

        from artlens.explorer.app import create_app

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(root), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the explorer did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def served(explorer_store):
    server = Served(explorer_store)
    yield server
    server.stop()


# ------------------------------------------------------------------- HTTP, as a script calling the API would
def get(server, path: str, **params):
    url = server.url + path + (("&" if "?" in path else "?") + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(server, path: str, status: int = 200, **params):
    code, headers, body = get(server, path, **params)
    assert code == status, (code, body[:500])
    assert headers["content-type"].startswith("application/json")
    return json.loads(body)
