"""A headless Chromium driven by selenium, with the system's browser and driver (Debian's
``chromium`` and ``chromium-driver``; a browser that downloads itself is not used).

    driver = open_chromium(profile_dir)           # a fresh profile folder
    driver.get(url); ...; driver.quit()

:func:`find_browser` says what is missing (``None`` when everything is there), so a test can
skip, or fail where the browser is required (CI sets ``RLMM_BROWSER_TEST=1``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

#: Flags for a headless Chromium run as root in a container, offline.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",
)


def browser_paths() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) on this machine, or None for either."""
    browser = os.environ.get("RLMM_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    driver = os.environ.get("RLMM_CHROMEDRIVER") or shutil.which("chromedriver")
    return browser, driver


def find_browser() -> str | None:
    """What is missing for :func:`open_chromium`, or None."""
    browser, driver = browser_paths()
    missing = []
    if importlib.util.find_spec("selenium") is None:
        missing.append('selenium (pip install "recbole-rlmm[test]")')
    if browser is None:
        missing.append("chromium (apt-get install -y chromium)")
    if driver is None:
        missing.append("chromedriver (apt-get install -y chromium-driver)")
    return ", ".join(missing) or None


def open_chromium(profile: str | os.PathLike[str], width: int = 1400, height: int = 1000) -> Any:
    """A selenium ``webdriver.Chrome`` on the system's Chromium with a fresh ``profile`` folder."""
    from selenium import webdriver

    browser, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={Path(profile).resolve()}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
