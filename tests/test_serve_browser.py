"""The page of ``recbole-rlmm serve`` end to end in a real headless browser (Debian's chromium and
chromedriver, driven by selenium): load the page, choose a user, see K items render with their
titles, pictures, scores and gate shares; similar items on click; a new user's history built by
searching titles. Skipped where the browser is missing, unless ``RLMM_BROWSER_TEST=1`` (CI), where
a missing browser fails."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from datagen import base_config, make_dataset
from serve_helpers import write_catalog

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
from serve_browser import find_browser, open_chromium  # noqa: E402
from serve_process import ServerProcess  # noqa: E402

pytestmark = pytest.mark.slow
NAME = "shop"
TIMEOUT = 60


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    missing = find_browser()
    if missing:
        if os.environ.get("RLMM_BROWSER_TEST") == "1":
            pytest.fail(f"the browser test is required here (RLMM_BROWSER_TEST=1) but {missing} is missing")
        pytest.skip(f"no browser: {missing}")
    for extra in ("fastapi", "uvicorn"):
        pytest.importorskip(extra)
    driver = open_chromium(tmp_path_factory.mktemp("chromium-profile"))
    driver.set_page_load_timeout(TIMEOUT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory):
    from recbole_rlmm import run_recbole_rlmm

    root = tmp_path_factory.mktemp("browser") / "data"
    write_catalog(make_dataset(root, name=NAME), NAME)
    cwd, argv = os.getcwd(), sys.argv
    os.chdir(root.parent)
    sys.argv = ["pytest"]
    try:
        checkpoint = run_recbole_rlmm("RLMultimodalRec", config_dict=base_config(root, name=NAME, epochs=1))["checkpoint"]
    finally:
        os.chdir(cwd)
        sys.argv = argv
    with ServerProcess(checkpoint) as server:
        yield server.url


def wait_for(driver, condition, message: str):
    """Wait until ``condition``; an element the page replaced meanwhile (a list re-rendered
    while the condition read it) counts as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, TIMEOUT, ignored_exceptions=(StaleElementReferenceException,))
    return wait.until(condition, message)


def cards(driver, section: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, f"#{section} .card")


def test_choose_a_user_and_see_k_items(browser, page_url: str, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    driver.get(page_url + "/")
    wait_for(driver, lambda d: "RLMultimodalRec on shop" in d.find_element(By.ID, "model-name").text, "model name")
    Select(driver.find_element(By.ID, "k")).select_by_visible_text("20")
    driver.find_element(By.ID, "user-input").send_keys("u7")
    driver.find_element(By.ID, "user-go").click()
    wait_for(driver, lambda d: len(cards(d, "recs")) == 20, "20 recommendation cards")
    assert "Top 20 for user u7" in driver.find_element(By.ID, "recs-title").text
    recs = cards(driver, "recs")
    texts = [c.find_element(By.CLASS_NAME, "title").text for c in recs]
    assert all(t.startswith("Movie number ") for t in texts), texts
    assert all("score " in c.find_element(By.CLASS_NAME, "meta").text for c in recs)
    assert all(c.find_element(By.CLASS_NAME, "shares").text.startswith("image 0.") for c in recs if c.get_attribute("data-item") != "i4")
    # the pictures the dataset has are loaded and shown (items i0..i19), the others say so
    for card in recs:
        number = int(card.get_attribute("data-item")[1:])
        if number < 20:
            image = card.find_element(By.TAG_NAME, "img")
            wait_for(driver, lambda d, image=image: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image), "picture loaded")
        else:
            assert card.find_element(By.CLASS_NAME, "noimg").text == "no picture"
    history = cards(driver, "history")
    assert history and "History of user u7" in driver.find_element(By.ID, "history-title").text
    # similar items on click
    first = recs[0].get_attribute("data-item")
    recs[0].click()
    wait_for(driver, lambda d: len(cards(d, "similar")) == 20, "20 similar items")
    assert first not in [c.get_attribute("data-item") for c in cards(driver, "similar")]
    driver.save_screenshot(str(tmp_path / "page.png"))
    assert (tmp_path / "page.png").stat().st_size > 10_000


def test_build_a_new_users_history_by_searching_titles(browser, page_url: str) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(page_url + "/")
    wait_for(driver, lambda d: "RLMultimodalRec" in d.find_element(By.ID, "model-name").text, "model name")
    search = driver.find_element(By.ID, "search-input")
    for query in ("number 3 Alpha", "number 12 Beta"):
        search.clear()
        search.send_keys(query)
        driver.find_element(By.ID, "search-go").click()
        wait_for(driver, lambda d, q=query: any(q in r.text for r in d.find_elements(By.CSS_SELECTOR, "#search-results .result")), f"search result for {query}")
        driver.find_element(By.CSS_SELECTOR, "#search-results .result button").click()
    chips = driver.find_elements(By.CSS_SELECTOR, "#new-history .chip")
    assert [c.text.rstrip("×").strip() for c in chips] == ["Movie number 3 Alpha", "Movie number 12 Beta"]
    driver.find_element(By.ID, "new-go").click()
    wait_for(driver, lambda d: "for the new user" in d.find_element(By.ID, "recs-title").text, "new user's list")
    items = [c.get_attribute("data-item") for c in cards(driver, "recs")]
    assert len(items) == 10 and not {"i3", "i12"} & set(items)
    assert len(cards(driver, "history")) == 2


def test_a_mistake_is_shown_on_the_page(browser, page_url: str) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(page_url + "/")
    wait_for(driver, lambda d: "RLMultimodalRec" in d.find_element(By.ID, "model-name").text, "model name")
    driver.find_element(By.ID, "user-input").send_keys("nobody")
    driver.find_element(By.ID, "user-go").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "error").is_displayed(), "error shown")
    assert "unknown user 'nobody'" in driver.find_element(By.ID, "error").text
