"""`artlens serve` as a user starts it: on the loopback address by default (and saying where), a warning when
told to listen elsewhere, a clear one-line refusal without the page's deck.gl bundle or with a bad port."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from artlens.cli.main import main
from artlens.store.catalog import TableEntry
from artlens.store.writer import TableWriter


@pytest.fixture
def small_store(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    writer = TableWriter(tmp_path / "store", TableEntry(name="t", model="imported model", pretrained="imported",
                                                        preprocess="unknown", dim=8))
    writer.commit("t.parquet", [{"key": f"k{i}", "shard": "t.parquet"} for i in range(6)], X, [])
    writer.finish()
    return tmp_path / "store"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(store, *flags: str) -> tuple[subprocess.Popen, int]:
    port = _port()
    proc = subprocess.Popen([sys.executable, "-m", "artlens", "serve", "--store", str(store), "--port", str(port),
                             *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, port


def _tables(port: int, timeout: float = 60.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/tables", timeout=10) as response:
                return json.loads(response.read())
        except OSError:
            assert time.monotonic() < deadline, "artlens serve did not answer"
            time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.parametrize("host, warned", [(None, False), ("0.0.0.0", True)])
def test_serve_binds_where_told_and_says_so(small_store, host, warned):
    proc, port = _serve(small_store, *(["--host", host] if host else []))
    try:
        assert [t["name"] for t in _tables(port)] == ["t"]
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f"explorer of {small_store} at http://{host or '127.0.0.1'}:{port}/" in out
    assert ("reachable from the network" in err) is warned, err


def test_serve_without_the_bundle_says_make_install(small_store, tmp_path, monkeypatch, capsys):
    from artlens.explorer import app

    monkeypatch.setattr(app, "VENDOR", tmp_path / "no-vendor" / "deck.min.js")
    assert main(["serve", "--store", str(small_store), "--port", str(_port())]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "deck.gl bundle is missing" in err and "make install" in err, err


def test_serve_refuses_a_bad_port(small_store, capsys):
    assert main(["serve", "--store", str(small_store), "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "--port" in err and "65535" in err, err
