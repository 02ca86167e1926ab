"""What the browser tests of the pages share: a headless Chromium (skipped on a machine without
Chromium, chromedriver or selenium, but a failure under CI=true, where scripts/services.sh installs
them: a browser test that silently never runs would prove nothing) and the app served on a free
port over the test's own connection."""
from __future__ import annotations

import contextlib
import os
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server


def _missing() -> list[str]:
    missing = [name for name in ("chromium", "chromedriver") if shutil.which(name) is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install -e '.[test]')")
    return missing


@contextlib.contextmanager
def chromium(window_size: str) -> Iterator[Any]:
    """A headless Chromium asking for Chinese pages, its console log kept (CSP refusals show there)."""
    missing = _missing()
    if missing:
        message = "browser test needs " + ", ".join(missing) + " (apt-get install -y chromium chromium-driver)"
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--disable-extensions", f"--window-size={window_size}", "--lang=zh-CN"):
        options.add_argument(argument)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(10)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app on a free port in a thread, over the test's own connection (rolled back at the end,
    as for every test): one request at a time, so that connection is only ever used by one thread
    at once; the test reads the database only while the page is idle."""
    server = make_server("127.0.0.1", 0, app, threaded=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(5)


def visible_text(driver: Any, element_id: str) -> str:
    element = driver.find_element("id", element_id)
    return element.text if element.is_displayed() else ""


def csp_refusals(driver: Any) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser")
            if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]]
