"""`make bench-explorer`: the explorer's speed on the 2-core machine (issue 19's targets: the map's data of a
100,000-row table in under 2 s, a neighbour search under 100 ms at the median, a cached thumbnail under 20 ms).

A synthetic 100,000-row table (`write_synthetic_table`) and a small extracted image table (24 procedural JPEGs,
ViT-B-32 with random weights: thumbnails need images) in one store, `artlens serve` started on a free loopback
port (after `artlens index` of the synthetic table), then over HTTP: the map data (first: computed and kept in the store; then cached), the median of 50
neighbour searches by key, and the median of 50 fetches of one cached thumbnail. Prints the figures."""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.synthetic_tables import write_synthetic_table


def _fetch(url: str) -> tuple[float, bytes]:
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as response:
        body = response.read()
    return time.perf_counter() - started, body


def _image_table(root: Path, work: Path) -> None:
    from PIL import Image

    folder = work / "images"
    folder.mkdir()
    for i in range(24):
        Image.new("RGB", (640 + 8 * i, 480), (10 * i, 200 - 5 * i, 90)).save(folder / f"img{i:02d}.jpg", quality=90)
    subprocess.run([sys.executable, "-m", "artlens", "extract", "--shards", str(folder), "--store", str(root),
                    "--table", "images", "--model", "ViT-B-32", "--pretrained", "random", "--device", "cpu",
                    "--workers", "0", "--no-progress"], check=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="rows of the synthetic table")
    p.add_argument("--dim", type=int, default=512, help="dimension of its vectors")
    p.add_argument("--queries", type=int, default=50, help="neighbour searches and thumbnail fetches timed")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-explorer-") as tmp:
        work = Path(tmp)
        root = work / "store"
        write_synthetic_table(root, "synthetic", a.n, a.dim)
        # the FAISS index a user builds for search (`artlens index`); without it every search is exact
        subprocess.run([sys.executable, "-m", "artlens", "index", "--store", str(root), "--table", "synthetic"],
                       check=True)
        _image_table(root, work)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "artlens", "serve", "--store", str(root), "--port", str(port)])
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    _fetch(base + "/api/tables")
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("artlens serve did not start")
                    time.sleep(0.2)
            first, body = _fetch(f"{base}/api/tables/synthetic/map?method=pca&color=cluster")
            cached, _ = _fetch(f"{base}/api/tables/synthetic/map?method=pca&color=cluster")
            points = json.loads(body)["n"]
            searches = [_fetch(f"{base}/api/tables/synthetic/neighbors?key=v{i * 997 % a.n:08d}&k=10")[0]
                        for i in range(a.queries)]
            _fetch(f"{base}/api/tables/images/image/img03?size=160")  # made once, then cached in the store
            thumbs = [_fetch(f"{base}/api/tables/images/image/img03?size=160")[0] for _ in range(a.queries)]
        finally:
            server.terminate()
            server.wait(30)
    print(f"explorer on {a.n:,} rows (dim {a.dim}):")
    print(f"  map data, first (PCA computed and kept): {first:8.3f} s  ({points:,} points, {len(body) / 1e6:.1f} MB)")
    print(f"  map data, cached:                        {cached:8.3f} s")
    print(f"  neighbour search by key, median of {a.queries}:  {1000 * statistics.median(searches):8.1f} ms")
    print(f"  cached thumbnail (160 px), median of {a.queries}: {1000 * statistics.median(thumbs):8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
