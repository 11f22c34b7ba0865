"""The explorer driven in a real browser (Playwright with Debian's chromium, WebGL by SwiftShader): the map
draws its points, a box selection lists paintings, a key search shows thumbnails, a painting's page shows its
neighbours, a confusion cell opens its gallery, the hostile label shows as text with no dialog, and the table
without images shows metadata cards. ARTLENS_EXPLORER_SCREENS=DIR saves a screenshot of each journey there
(docs/explorer/ holds them)."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from explorerkit import HOSTILE, explorer_store, served  # noqa: F401 - fixtures

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
        "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
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
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for r, g, b in image.getdata() if max(r, g, b) - min(r, g, b) > 40)


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
    assert page.locator("script").count() == 2  # the page's own two, none from the data
    assert page.locator("#neighbours .thumb").count() == 12
    until(page, "document.querySelector('.painting img').naturalWidth > 0")
    shot(page, "painting")


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
