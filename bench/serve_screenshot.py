"""The README's picture of the serving page: ``docs/serve.png``.

    python bench/serve_screenshot.py CHECKPOINT [--user TOKEN] [--k 10] [--out docs/serve.png]

Starts ``recbole-rlmm serve`` on a free loopback port, opens the page in headless Chromium
(``bench/serve_browser.py``), chooses the user, shows the top K and clicks the first item to show
its similar items, and saves a screenshot of the window (1400 px wide).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--user", default=None, help="user token (default: the first)")
    parser.add_argument("--k", default="10", choices=["5", "10", "20", "50"])
    parser.add_argument("--height", type=int, default=1500, help="window height in px")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "serve.png")
    args = parser.parse_args(argv)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
    from serve_browser import find_browser, open_chromium
    from serve_process import ServerProcess

    missing = find_browser()
    if missing:
        raise SystemExit(f"serve_screenshot: {missing} missing")
    with ServerProcess(args.checkpoint) as server, tempfile.TemporaryDirectory() as profile:
        driver = open_chromium(profile, 1400, args.height)
        try:
            wait = WebDriverWait(driver, 120)
            driver.get(server.url + "/")
            wait.until(lambda d: " on " in d.find_element(By.ID, "model-name").text)
            Select(driver.find_element(By.ID, "k")).select_by_visible_text(args.k)
            user = args.user or driver.execute_script("return document.querySelector('#user-list option').value")
            driver.find_element(By.ID, "user-input").send_keys(user)
            driver.find_element(By.ID, "user-go").click()
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recs .card")) == int(args.k))
            driver.find_elements(By.CSS_SELECTOR, "#recs .card")[0].click()
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#similar .card")) == int(args.k))
            driver.execute_script("window.scrollTo(0, 0)")
            # the page loads pictures lazily: wait for those in the window, the others never load
            wait.until(lambda d: d.execute_script(
                "return [...document.images].filter(i => { const r = i.getBoundingClientRect();"
                " return r.bottom > 0 && r.top < innerHeight && r.right > 0 && r.left < innerWidth; })"
                ".every(i => i.complete)"))
            driver.execute_script("window.scrollTo(0, 0)")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
    print(f"wrote {args.out} (user {user})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
