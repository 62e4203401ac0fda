"""A real browser (headless Chromium) reads the pages of a running `watcher serve`.

Set WATCHER_SCREENSHOTS=docs to keep the screenshots of docs/browse.md (front page, News,
an item, Stories, at 1400 and 800 px wide), taken on an invented corpus.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browse_support import (
    METADATA,
    Corpus,
    build_corpus,
    build_showcase,
    free_port,
    serving,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="headless browser test needs Chromium and its driver "
    "(Debian: apt-get install chromium chromium-driver; .ci/run installs them)",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1400,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options
    )
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def viewport(browser: Any, width: int, height: int) -> None:
    """Make the page area (not the window) ``width`` x ``height`` CSS pixels."""
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
    )


def served(corpus: Corpus, tmp_path: Path, *metadata: str) -> tuple[list[str], int]:
    port = free_port()
    args = ["--config", str(corpus.watcher.config), "--db", str(corpus.db)]
    return [*args, "serve", "--port", str(port), *metadata], port


def test_searching_the_news_page_in_a_browser_shows_the_matching_item(
    tmp_path: Path, browser: Any
) -> None:
    """Typing a keyword into the news page's search box and submitting lists the item."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    corpus = build_corpus(tmp_path)
    args, port = served(corpus, tmp_path, "--metadata", str(METADATA))
    with serving(args, cwd=tmp_path, port=port):
        browser.get(f"http://127.0.0.1:{port}/{corpus.name}/news")
        assert "News" in browser.find_element(By.TAG_NAME, "h1").text
        box = browser.find_element(By.NAME, "_search")
        box.send_keys("squadron")
        box.submit()
        WebDriverWait(browser, 30).until(expected_conditions.url_contains("_search=squadron"))
        titles = [card.text for card in browser.find_elements(By.CSS_SELECTOR, "article.card h2")]
        assert "Reconnaissance drones moved to Kant air base" in titles
        assert "CSTO air defence drill ends near Issyk-Kul" not in titles


def test_news_cards_fill_the_first_screen_with_facets_beside_them(
    tmp_path: Path, browser: Any
) -> None:
    """At 1400 x 900 the first cards are on screen, the facets to their right, no JSON shown;
    at 800 px the facets move below the results."""
    from selenium.webdriver.common.by import By

    corpus = build_showcase(tmp_path)
    args, port = served(corpus, tmp_path)
    with serving(args, cwd=tmp_path, port=port):
        viewport(browser, 1400, 900)
        browser.get(f"http://127.0.0.1:{port}/{corpus.name}/news")
        cards = browser.find_elements(By.CSS_SELECTOR, "article.card")
        assert len(cards) >= 10
        visible = [card for card in cards if card.rect["y"] + card.rect["height"] <= 900]
        assert len(visible) >= 3, [card.rect for card in cards[:4]]
        facets = browser.find_element(By.CSS_SELECTOR, ".reader-facets")
        assert facets.rect["x"] > cards[0].rect["x"] + cards[0].rect["width"]
        first = cards[0]
        assert first.find_element(By.CSS_SELECTOR, ".meta .source").text
        assert first.find_elements(By.CSS_SELECTOR, ".chip")
        body = browser.find_element(By.TAG_NAME, "body").text
        assert '["' not in body
        assert "sources, " in body
        # a two-line snippet: never taller than three lines of its text
        snippet = first.find_element(By.CSS_SELECTOR, ".snippet")
        line = float(
            browser.execute_script(
                "return parseFloat(getComputedStyle(arguments[0]).lineHeight)", snippet
            )
        )
        assert snippet.rect["height"] <= 2 * line + 2
        viewport(browser, 800, 1000)
        browser.get(f"http://127.0.0.1:{port}/{corpus.name}/news")
        cards = browser.find_elements(By.CSS_SELECTOR, "article.card")
        facets = browser.find_element(By.CSS_SELECTOR, ".reader-facets")
        assert facets.rect["y"] > cards[-1].rect["y"]
        assert cards[0].rect["y"] < 1000


def test_an_item_page_reads_like_an_article_with_its_story_beside_it(
    tmp_path: Path, browser: Any
) -> None:
    """Title, source, date and text first; other write-ups and copies in a side column; the
    stored fields folded away."""
    from selenium.webdriver.common.by import By

    corpus = build_corpus(tmp_path)
    args, port = served(corpus, tmp_path)
    with serving(args, cwd=tmp_path, port=port):
        viewport(browser, 1400, 900)
        browser.get(f"http://127.0.0.1:{port}/{corpus.name}/items/1")
        assert browser.find_element(By.TAG_NAME, "h1").text == (
            "Reconnaissance drones moved to Kant air base"
        )
        byline = browser.find_element(By.CSS_SELECTOR, ".byline").text
        assert "Steppe Herald" in byline
        text = browser.find_element(By.CSS_SELECTOR, ".article .text")
        assert "squadron of reconnaissance drones" in text.text
        assert text.rect["width"] > 500
        side = browser.find_element(By.CSS_SELECTOR, ".article-side")
        assert side.rect["x"] > text.rect["x"] + text.rect["width"]
        assert "Drones moved to Kant air base, ministry says" in side.text
        record = browser.find_element(By.CSS_SELECTOR, "details.record")
        assert record.get_attribute("open") is None
        assert not browser.find_element(By.CSS_SELECTOR, ".record table").is_displayed()


SHOTS = {
    "front": "/{db}",
    "news": "/{db}/news",
    "item": "/{db}/items/{item}",
    "stories": "/{db}/story_summary",
}


def test_screenshots_of_the_pages(tmp_path: Path, browser: Any) -> None:
    """The front page, News, an item and Stories at 1400 and 800 px, on the invented corpus;
    kept in $WATCHER_SCREENSHOTS (docs/browse-*.png) when set."""
    from selenium.webdriver.common.by import By

    corpus = build_showcase(tmp_path)
    import sqlite3

    with sqlite3.connect(corpus.db) as connection:
        (item,) = connection.execute(
            "SELECT id FROM items WHERE external_id = 'kant-radar'"
        ).fetchone()
    args, port = served(corpus, tmp_path)
    keep = os.environ.get("WATCHER_SCREENSHOTS")
    with serving(args, cwd=tmp_path, port=port):
        for name, path in SHOTS.items():
            for width, height in ((1400, 1000), (800, 1200)):
                viewport(browser, width, height)
                address = path.format(db=corpus.name, item=item).replace(f"/{corpus.name}", "", 1)
                address = address if name != "front" else "/"
                if name != "front":
                    address = f"/{corpus.name}" + address
                browser.get(f"http://127.0.0.1:{port}{address}")
                assert browser.find_element(By.TAG_NAME, "h1").text
                shot = tmp_path / f"browse-{name}-{width}.png"
                assert browser.save_screenshot(str(shot))
                if keep:
                    shutil.copy(shot, Path(keep) / shot.name)
