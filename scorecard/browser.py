"""The page in a real headless Chromium (Debian's `chromium` + `chromium-driver`, via selenium):
what it renders, what its console says, and a screenshot.

    python -m scorecard.browser results/report/index.html docs/scorecard.png
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

# Debian's names; found on PATH first, so another install of the pair works too.
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver",)
WIDTH = 1280
# The README's screenshot: the overview and the first suite's table, not all of a long page.
SHOT_HEIGHT = 1300


class BrowserMissing(Exception):
    """No Chromium or no chromedriver here: scripts/host-packages.sh test installs both."""


def _which(names: tuple[str, ...], extra: tuple[str, ...] = ()) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return next((p for p in extra if Path(p).exists()), None)


def missing_reason() -> str | None:
    if _which(BROWSERS) is None:
        return "no chromium on PATH (Debian: chromium; scripts/host-packages.sh test)"
    if _which(DRIVERS, ("/usr/lib/chromium/chromedriver",)) is None:
        return "no chromedriver on PATH (Debian: chromium-driver; scripts/host-packages.sh test)"
    return None


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A headless Chromium that logs its console, stopped when the block ends."""
    reason = missing_reason()
    browser = _which(BROWSERS)
    driver_path = _which(DRIVERS, ("/usr/lib/chromium/chromedriver",))
    if reason is not None or browser is None or driver_path is None:
        raise BrowserMissing(reason or "no browser")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in (
        "--headless=new",
        # Root in CI and containers: Chromium's sandbox refuses to start as root.
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WIDTH},900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver: selenium would otherwise try to download one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


@dataclass(frozen=True, slots=True)
class Rendered:
    title: str
    tables: int
    svg_charts: int
    images: int  # <img> elements that loaded (naturalWidth > 0)
    broken_images: int
    console_errors: tuple[str, ...]


def open_page(driver: webdriver.Chrome, page: Path) -> Rendered:
    driver.get(page.resolve().as_uri())
    images = driver.find_elements(By.TAG_NAME, "img")
    loaded = [i for i in images if driver.execute_script("return arguments[0].naturalWidth", i) > 0]
    # selenium's get_log carries no type hints.
    log = driver.get_log("browser")  # type: ignore[no-untyped-call]
    errors = tuple(str(entry.get("message")) for entry in log if entry.get("level") == "SEVERE")
    return Rendered(
        title=driver.title,
        tables=len(driver.find_elements(By.TAG_NAME, "table")),
        svg_charts=len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")),
        images=len(loaded),
        broken_images=len(images) - len(loaded),
        console_errors=errors,
    )


def screenshot(driver: webdriver.Chrome, page: Path, out: Path, height: int = SHOT_HEIGHT) -> None:
    """The top `height` pixels of the page as a PNG (all of it when shorter)."""
    driver.get(page.resolve().as_uri())
    full = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(WIDTH, min(full, height))
    out.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(out)):
        raise WebDriverException(f"no screenshot written to {out}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m scorecard.browser PAGE SCREENSHOT.png", file=sys.stderr)
        return 2
    page, out = Path(args[0]), Path(args[1])
    if not page.is_file():
        print(
            f"scorecard.browser: no page at {page} (python -m scorecard writes it)", file=sys.stderr
        )
        return 2
    try:
        with chromium() as driver:
            rendered = open_page(driver, page)
            screenshot(driver, page, out)
    except (BrowserMissing, WebDriverException) as error:
        print(f"scorecard.browser: {str(error).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    for message in rendered.console_errors:
        print(f"console error: {message}", file=sys.stderr)
    print(
        f"{page}: {rendered.tables} tables, {rendered.svg_charts} SVG charts, "
        f"{rendered.images} images; screenshot {out}"
    )
    return 1 if rendered.console_errors or rendered.broken_images else 0


if __name__ == "__main__":
    sys.exit(main())
