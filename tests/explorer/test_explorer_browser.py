"""The explorer driven in a real browser (Playwright with Debian's chromium, WebGL by SwiftShader): the map
draws its points, a box selection lists paintings, a key search shows thumbnails, a painting's page shows its
neighbours, a confusion cell opens its gallery, the hostile label shows as text with no dialog, and the table
without images shows metadata cards. ARTLENS_EXPLORER_SCREENS=DIR saves a screenshot of each journey there
(docs/explorer/ holds them)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.explorer_browser import CHROMIUM, CHROMIUM_ARGS as ARGS
from explorerkit import HOSTILE, Served, explorer_store, served  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM} (.ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, served):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    p = context.new_page()
    dialogs, errors = [], []
    p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.base = served.url
    yield p
    context.close()
    assert dialogs == [], f"a dialog opened: {dialogs}"
    assert errors == [], f"the page raised: {errors}"


def shot(page, name: str) -> None:
    folder = os.environ.get("ARTLENS_EXPLORER_SCREENS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


def until(page, js: str, timeout: float = 30.0) -> None:
    """Poll an expression (page.evaluate: the page's CSP forbids wait_for_function's eval) until it is true."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(js):
        assert time.monotonic() < deadline, f"never true: {js}"
        page.wait_for_timeout(100)


def coloured_pixels(png: bytes) -> int:
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)
    return int(np.count_nonzero(rgb.max(axis=2) - rgb.min(axis=2) > 40))


def test_the_map_draws_its_points_and_a_box_selects_paintings(page):
    page.goto(page.base + "/#/map")
    page.wait_for_selector("#map-status[data-points='21']", timeout=60000)
    page.select_option("#color", "style")
    page.wait_for_selector("#legend span.swatch")
    page.wait_for_timeout(800)
    assert coloured_pixels(page.locator("#map").screenshot()) > 100  # the points are drawn (white background)
    assert HOSTILE in page.locator("#legend").inner_text()
    box = page.locator("#map").bounding_box()
    page.keyboard.down("Shift")
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, steps=5)
    page.mouse.move(box["x"] + box["width"] - 5, box["y"] + box["height"] - 5, steps=5)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_selector("#selection .thumb img")
    assert "Selection: 21 paintings" in page.locator("#selection h2").inner_text()
    shot(page, "map")


def points_on_screen(page) -> list[tuple[str, float, float]]:
    """Each drawn point's key and page position, from the map's own viewport (deck.gl's project)."""
    return page.evaluate("""() => { const r = document.getElementById('map').getBoundingClientRect();
        const v = state.deck.getViewports()[0];
        return state.map.keys.map((k, i) => { const [x, y] = v.project([state.map.x[i], -state.map.y[i]]);
                                             return [k, r.left + x, r.top + y]; }); }""")


def inside(poly, x, y) -> bool:
    hit = False
    for (xi, yi), (xj, yj) in zip(poly, poly[-1:] + poly[:-1]):
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            hit = not hit
    return hit


def test_hover_shows_a_thumbnail_and_a_lasso_selects_what_it_encloses(page):
    page.goto(page.base + "/#/map")
    page.wait_for_selector("#map-status[data-points='21']", timeout=60000)
    page.wait_for_timeout(500)
    key, x, y = points_on_screen(page)[0]
    page.mouse.move(x - 30, y - 30)
    page.mouse.move(x, y, steps=4)
    page.wait_for_selector("#tooltip:not([hidden]) img", timeout=20000)
    until(page, "document.querySelector('#tooltip img').naturalWidth > 0")
    assert page.locator("#tooltip").get_attribute("data-key") == key and key in page.locator("#tooltip").inner_text()
    shot(page, "map-hover")
    page.mouse.move(1, 1)
    # a triangle over the map's upper-left half: the listed paintings are exactly the points inside it
    page.select_option("#select-mode", "lasso")
    box = page.locator("#map").bounding_box()
    corners = [(box["x"] + 4, box["y"] + 4), (box["x"] + box["width"] - 4, box["y"] + 4),
               (box["x"] + 4, box["y"] + box["height"] - 4)]
    expected = sorted(k for k, px, py in points_on_screen(page) if inside(corners, px, py))
    assert 0 < len(expected) < 21, "the triangle should split the map's points"
    page.keyboard.down("Shift")
    page.mouse.move(*corners[0])
    page.mouse.down()
    for corner in corners[1:] + corners[:1]:
        page.mouse.move(*corner, steps=6)
    page.mouse.up()
    page.keyboard.up("Shift")
    page.wait_for_selector("#selection h2")
    n = len(expected)
    assert f"Selection: {n} painting{'s' if n != 1 else ''}" in page.locator("#selection h2").inner_text()
    listed = sorted(page.locator("#selection .thumb").evaluate_all("els => els.map(e => e.dataset.key)"))
    assert listed == expected


def test_search_a_key_and_see_thumbnails(page):
    page.goto(page.base + "/#/search")
    page.fill("#search-key", "p0_00")
    page.click("#search-key-go")
    page.wait_for_selector("#search-results .thumb img")
    thumbs = page.locator("#search-results .thumb")
    assert thumbs.count() == 12
    until(page, "[...document.querySelectorAll('#search-results img')].every(i => i.complete && i.naturalWidth > 0)")
    shot(page, "search")


def test_a_painting_with_its_metadata_and_neighbours(page):
    page.goto(page.base + "/#/painting/paintings/p0_02")
    page.wait_for_selector("#neighbours .thumb")
    assert page.locator("#metadata").inner_text().count(HOSTILE) >= 1  # the hostile label, as text
    assert page.locator("script").count() == 3  # the page's own three, none from the data
    assert page.locator("#neighbours .thumb").count() == 12
    until(page, "document.querySelector('.painting img').naturalWidth > 0")
    shot(page, "painting")


def test_a_painting_shows_its_deformations_and_saliency_map(page):
    page.goto(page.base + "/#/painting/paintings/p0_02")
    page.wait_for_selector("#extras[data-ready='true']")
    table = page.locator("#extras table.deformations")
    assert table.count() == 1 and "blur" in table.inner_text() and "cos " in table.inner_text()
    assert table.locator("tr").count() == 3   # the header, blur, noise
    assert "a <b>cubist</b> painting" in page.locator("#extras figure.saliency figcaption").inner_text()
    assert page.locator("#extras b").count() == 0   # the words as text, not markup
    until(page, "[...document.querySelectorAll('#extras img')].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("#extras img").count() == 2   # the contact sheet and the saliency map
    shot(page, "painting-extras")


def test_a_probe_result_and_a_confusion_cells_gallery(page):
    page.goto(page.base + "/#/results")
    page.click("#results-list a")
    page.wait_for_selector("#confusion td")
    cell = page.locator(f"#confusion td[data-label='{HOSTILE}']").first
    count = int(cell.inner_text())
    cell.click()
    page.wait_for_selector("#cell-gallery h3")
    assert page.locator("#cell-gallery .thumb").count() == count
    assert HOSTILE in page.locator("#cell-gallery h3").inner_text()
    shot(page, "result")


def test_a_table_without_images_shows_metadata_cards(page):
    page.goto(page.base + "/#/search")
    page.wait_for_selector("#table option[value='nga']", state="attached")
    page.select_option("#table", "nga")
    page.fill("#search-key", "nga1")
    page.click("#search-key-go")
    page.wait_for_selector("#search-results .thumb")
    until(page, "document.querySelectorAll('#search-results .thumb img').length === 0")
    cards = page.locator("#search-results .card")
    assert cards.count() == 11 and HOSTILE in page.locator("#search-results").inner_text()
    shot(page, "no-images")


@pytest.fixture
def url_table(tmp_path):
    """A store whose table names its images by URL: served by a real HTTP server on loopback for rows 0-3,
    unreachable for rows 4-5; the explorer over it."""
    import functools
    import http.server
    import threading

    from artlens.store.catalog import TableEntry
    from artlens.store.writer import TableWriter

    (tmp_path / "www").mkdir()
    Image.new("RGB", (90, 60), (200, 30, 30)).save(tmp_path / "www" / "red.png")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    rows = [{"key": f"u{i}", "shard": "u.parquet", "title": f"work {i}",
             "link": f"{base}/red.png" if i < 4 else "http://127.0.0.1:9/gone.png"} for i in range(6)]
    writer = TableWriter(tmp_path / "store", TableEntry(name="urls", model="imported model", pretrained="imported",
                                                        preprocess="unknown", dim=8, image_url_column="link"))
    writer.commit("u.parquet", rows, X, [])
    writer.finish()
    server = Served(tmp_path / "store")
    yield server
    server.stop()
    httpd.shutdown()


def test_a_table_of_image_urls_shows_the_reachable_images(browser, url_table):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    try:
        page.goto(url_table.url + "/#/search")
        page.fill("#search-key", "u0")
        page.click("#search-key-go")
        page.wait_for_selector("#search-results .thumb")
        until(page, "document.querySelectorAll('#search-results .card').length === 2")   # u4, u5: unreachable
        until(page, "[...document.querySelectorAll('#search-results img')].filter(i => i.naturalWidth === 90).length === 3")
        cards = page.locator("#search-results .thumb:has(.card)").evaluate_all("els => els.map(e => e.dataset.key)")
        assert sorted(cards) == ["u4", "u5"]
    finally:
        context.close()
