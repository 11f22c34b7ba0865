"""`make bench-explorer-browser`: the explorer's map of a 1,000,000-row table in a real browser (issue 19: "drawn
on the GPU of the browser so 1M points stay fluid").

A synthetic table (`write_synthetic_table`, 1,000 clusters), its PCA map made ahead by `artlens map`, `artlens serve`
on a free loopback port, then Debian's chromium through Playwright opens `#/map` coloured by `cluster` and we time:
navigation to the points drawn (the map's data fetched, decoded and uploaded), then frames while the map is
dragged (pan) and while the pointer moves over it (hover picking), from deck.gl's own `onAfterRender`.

Chromium's WebGL here is whatever the machine gives it: SwiftShader (a CPU rasteriser) on a machine without a
GPU, which says how the page degrades there, not what a GPU draws. Prints the figures and writes JSON
(`--json`)."""
from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.synthetic_tables import write_synthetic_table

CHROMIUM = "/usr/bin/chromium"
#: Headless chromium without downloads or background traffic; WebGL through ANGLE (SwiftShader without a GPU).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
FRAME_COUNTER = """() => { window.__frames = []; state.deck.setProps({ onAfterRender: () => window.__frames.push(performance.now()) }); }"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, server: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10):
                return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("artlens serve did not start")
            time.sleep(0.2)


def _frames(page, action) -> dict:
    """Frames deck.gl drew while `action()` ran: count, seconds, frames per second, slowest frame (ms)."""
    page.evaluate(FRAME_COUNTER)
    started = time.perf_counter()
    action()
    page.wait_for_timeout(300)   # the last frames of the gesture
    seconds = time.perf_counter() - started
    stamps = page.evaluate("() => window.__frames")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return {"frames": len(stamps), "seconds": round(seconds, 3), "fps": round(len(stamps) / seconds, 2),
            "slowest_frame_ms": round(max(gaps), 1) if gaps else None}


def measure(base: str, n: int, gesture_steps: int) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        print("chromium started; opening the map", flush=True)
        started = time.perf_counter()
        page.goto(base + "/#/map")
        page.wait_for_selector("#map-status[data-points]", timeout=300_000)
        drawn = time.perf_counter() - started
        print(f"points drawn in {drawn:.2f} s; colouring", flush=True)
        started = time.perf_counter()
        page.select_option("#color", "cluster")   # a number column: a colour ramp
        page.wait_for_selector("#map-status[data-points]", timeout=300_000)
        coloured = time.perf_counter() - started
        points = int(page.locator("#map-status").get_attribute("data-points"))
        box = page.locator("#map").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

        def pan() -> None:
            page.mouse.move(cx, cy)
            page.mouse.down()
            page.mouse.move(cx + 200, cy + 120, steps=gesture_steps)
            page.mouse.move(cx - 150, cy - 80, steps=gesture_steps)
            page.mouse.up()

        def hover() -> None:
            page.mouse.move(box["x"] + 20, box["y"] + 20)
            page.mouse.move(box["x"] + box["width"] - 20, box["y"] + box["height"] - 20, steps=gesture_steps)

        print("panning", flush=True)
        panned = _frames(page, pan)
        print("hovering", flush=True)
        hovered = _frames(page, hover)
        renderer = page.evaluate("""() => { const gl = document.createElement('canvas').getContext('webgl2');
            const info = gl && gl.getExtension('WEBGL_debug_renderer_info');
            return info ? gl.getParameter(info.UNMASKED_RENDERER_WEBGL) : (gl ? gl.getParameter(gl.RENDERER) : null); }""")
        browser.close()
    assert points == n, f"the page drew {points} points of {n}"
    return {"points": points, "renderer": renderer, "first_draw_s": round(drawn, 3),
            "recolour_s": round(coloured, 3), "pan": panned, "hover": hovered}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="rows of the synthetic table")
    p.add_argument("--dim", type=int, default=64, help="dimension of its vectors (only the map is drawn)")
    p.add_argument("--steps", type=int, default=40, help="pointer moves per gesture")
    p.add_argument("--json", type=Path, default=Path("build/bench-explorer-browser.json"), help="where the figures go")
    a = p.parse_args(argv)
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="bench-explorer-browser-") as tmp:
        root = Path(tmp) / "store"
        write_synthetic_table(root, "synthetic", a.n, a.dim)
        print(f"table of {a.n:,} rows written; artlens map", flush=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "artlens", "map", "--store", str(root), "--table", "synthetic"],
                       check=True, stdout=subprocess.DEVNULL)
        mapped = time.perf_counter() - started
        port = _port()
        server = subprocess.Popen([sys.executable, "-m", "artlens", "serve", "--store", str(root), "--port", str(port)],
                                  stdout=subprocess.DEVNULL)
        try:
            _wait_for(f"http://127.0.0.1:{port}/api/tables", server)
            figures = measure(f"http://127.0.0.1:{port}", a.n, a.steps)
        finally:
            server.terminate()
            server.wait(30)
    figures = {"n": a.n, "dim": a.dim, "artlens_map_s": round(mapped, 3), **figures}
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(figures, indent=2))
    print(f"explorer map in chromium, {a.n:,} points (renderer: {figures['renderer']}):")
    print(f"  artlens map (PCA, made ahead):              {mapped:8.2f} s")
    print(f"  page opened to points drawn:                {figures['first_draw_s']:8.2f} s")
    print(f"  recoloured by cluster (data + redraw):      {figures['recolour_s']:8.2f} s")
    for name in ("pan", "hover"):
        f = figures[name]
        print(f"  {name:5s}: {f['fps']:6.1f} frames/s ({f['frames']} frames in {f['seconds']} s; slowest {f['slowest_frame_ms']} ms)")
    print(f"figures: {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
