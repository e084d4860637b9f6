"""End to end in a real headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by
Selenium): sign in with the link, rate two cases with the keyboard alone, reload, find the ratings
kept, go back and change one. Skipped, with the reason, where Chromium or its driver is missing
(``make test`` installs them with apt where it runs as root)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from hepaseg.rating.store import DB_FILE

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")
WAIT_S = 15


def _browser(profile: Path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    for path, what in ((CHROMIUM, "chromium"), (DRIVER, "chromium-driver")):
        if not Path(path).is_file():
            pytest.skip(f"{what} is not installed ({path} missing; as root: apt-get install -y chromium chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def _wait(driver, condition, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(lambda d: condition(d), message=what)


def _text(driver, element_id: str) -> str:
    return driver.find_element("id", element_id).text


def _keys(driver, keys: str, saves: int = 0) -> None:
    """Type ``keys`` into the page; wait for ``saves`` more answers of the server."""
    from selenium.webdriver.common.action_chains import ActionChains

    before = int(driver.execute_script("return document.body.dataset.saved || '0'"))
    ActionChains(driver).send_keys(keys).perform()
    if saves:
        _wait(driver, lambda d: int(d.execute_script("return document.body.dataset.saved || '0'")) >= before + saves,
              f"{saves} rating(s) saved after {keys!r}")


def _ratings(folder: Path) -> list[tuple]:
    with sqlite3.connect(folder / DB_FILE) as con:
        return con.execute("SELECT round, position, rating, quality FROM ratings ORDER BY 1, 2").fetchall()


def test_rate_two_cases_with_the_keyboard_reload_and_find_them_kept(rating, serve, tmp_path):
    init = rating()
    started = time.perf_counter()
    driver = _browser(tmp_path / "profile")
    try:
        with serve(init.folder) as url:
            driver.get(f"{url}/signin#token={init.tokens['R3']}")
            _wait(driver, lambda d: _text(d, "progress").startswith("case 1 of 3, round 1"), "the first case")
            assert "token" not in driver.current_url
            _keys(driver, "3w", saves=2)
            assert (_text(driver, "rating"), _text(driver, "quality")) == ("3", "2")
            first_slice = _text(driver, "slice")
            _keys(driver, "\ue013\ue013")  # arrow up twice: two slices on
            assert _text(driver, "slice") != first_slice
            _keys(driver, "c")
            assert "contour hidden" in _text(driver, "slice")
            _keys(driver, "n")
            _wait(driver, lambda d: _text(d, "progress").startswith("case 2 of 3"), "the second case")
            _keys(driver, "4e", saves=2)
            assert _ratings(init.folder) == [(0, 0, 3, 2), (0, 1, 4, 3)]
            driver.refresh()
            _wait(driver, lambda d: _text(d, "progress").startswith("case 3 of 3"), "the first unrated case")
            _keys(driver, "p")
            _wait(driver, lambda d: _text(d, "progress").startswith("case 2 of 3"), "back to case 2")
            assert (_text(driver, "rating"), _text(driver, "quality")) == ("4", "3")
            _keys(driver, "p")
            _wait(driver, lambda d: _text(d, "progress").startswith("case 1 of 3"), "back to case 1")
            assert (_text(driver, "rating"), _text(driver, "quality")) == ("3", "2")
            _keys(driver, "5", saves=1)
            assert _ratings(init.folder) == [(0, 0, 5, 2), (0, 1, 4, 3)]
            errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            assert errors == []
    finally:
        driver.quit()
    assert time.perf_counter() - started < 60
