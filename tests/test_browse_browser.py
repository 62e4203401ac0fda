"""A real browser (headless Chromium) searches the news page of a running `watcher serve`.

Set WATCHER_SCREENSHOT=docs/browse-items.png to keep the screenshot of the result page.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browse_support import METADATA, build_corpus, free_port, serving

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
        "--window-size=1400,1300",
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


def test_searching_the_news_page_in_a_browser_shows_the_matching_item(
    tmp_path: Path, browser: Any
) -> None:
    """Typing a keyword into the news page's search box and submitting lists the item."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    corpus = build_corpus(tmp_path)
    port = free_port()
    args = ["--config", str(corpus.watcher.config), "--db", str(corpus.db)]
    args += ["serve", "--port", str(port), "--metadata", str(METADATA)]
    with serving(args, cwd=tmp_path, port=port):
        browser.get(f"http://127.0.0.1:{port}/{corpus.name}/news")
        assert "News" in browser.find_element(By.TAG_NAME, "h1").text
        box = browser.find_element(By.NAME, "_search")
        box.send_keys("squadron")
        box.submit()
        WebDriverWait(browser, 30).until(expected_conditions.url_contains("_search=squadron"))
        table = browser.find_element(By.CSS_SELECTOR, "table.rows-and-columns")
        titles = [cell.text for cell in table.find_elements(By.CSS_SELECTOR, "td.col-title")]
        assert "Reconnaissance drones moved to Kant air base" in titles
        assert "CSTO air defence drill ends near Issyk-Kul" not in titles
        screenshot = tmp_path / "browse-items.png"
        assert browser.save_screenshot(str(screenshot))
        keep = os.environ.get("WATCHER_SCREENSHOT")
        if keep:
            shutil.copy(screenshot, keep)
