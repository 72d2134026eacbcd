"""The page in a real headless Chromium: tables and charts render, the console stays clean."""

import os
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from scorecard.browser import chromium, missing_reason, open_page
from scorecard.cli import main
from scorecard.tests import results
from scorecard.tests.test_page import hostile_suite


@pytest.fixture(scope="module")
def browser_or_skip() -> None:
    reason = missing_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the scorecard's browser test must run here, but {reason}")
    pytest.skip(reason)


def test_tables_and_charts_render_without_console_errors(
    tmp_path: Path, browser_or_skip: None
) -> None:
    results.suite(tmp_path, "contract")
    hostile_suite(tmp_path)
    results.bench(tmp_path)
    results.loadtest(tmp_path)
    assert main(["--results-dir", str(tmp_path)]) == 0
    page = tmp_path / "report" / "index.html"
    with chromium() as driver:
        rendered = open_page(driver, page)
        assert rendered.console_errors == ()
        assert rendered.title == "Gateway scorecard"  # the hostile name did not run
        # overview, contract (+ measured), hostile (+ measured), 2 bench, 1 load table
        assert rendered.tables == 8
        assert rendered.svg_charts == 4
        assert rendered.images == 1
        assert rendered.broken_images == 0
        headers = [
            h.text for h in driver.find_elements(By.CSS_SELECTOR, "#hostile table.suite thead th")
        ]
        assert headers == ["case", "gateway", results.HOSTILE_NAME]
        deviation = driver.find_element(By.CSS_SELECTOR, "#contract td.deviation")
        assert deviation.get_attribute("title") == "nginx: no /status counters"
        bars = driver.find_elements(By.CSS_SELECTOR, "#bench svg.chart rect")
        assert len(bars) == 4 * 3 - 2  # direct has no added latencies: "not measured"
        assert all(bar.size["width"] > 0 for bar in bars)
