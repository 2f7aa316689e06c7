"""/docs in a real browser with no network beyond loopback, as on an air-gapped cluster: Debian's
Chromium, headless, driven through Debian's chromedriver by Selenium, against the real server process.

The browser cannot reach anything but 127.0.0.1: every other host name fails to resolve and every
other address goes to a proxy port where nothing listens. A page that needed a CDN would stay blank
here. The browser's own request log must name nothing but this server.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from support.serverproc import free_port, start_server

# Swagger UI gives each operation the id operations-<tag>-<operationId>.
PREDICT = "#operations-predict-predict_predict_post"
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
# Generous: Chromium starts slowly on a busy two-core machine; a working page renders in about a second.
WAIT_SECONDS = 60
# The flags every test browser runs with: no GPU, no QUIC, nothing fetched in the background.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def command(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `make tools` (Debian's chromium and chromium-driver)")
    return path


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[WebDriver]:
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never look for a driver online
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    options = webdriver.ChromeOptions()
    options.binary_location = command("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tmp_path / "profile"
    profile.mkdir()
    options.add_argument(f"--user-data-dir={profile}")  # a new, empty profile
    # Loopback only: names other than 127.0.0.1 do not resolve, other addresses go to a closed port
    # (Chromium always reaches loopback directly, past the proxy).
    options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
    options.add_argument(f"--proxy-server=http://127.0.0.1:{free_port()}")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=command("chromedriver")))
    try:
        yield driver
    finally:
        driver.quit()


def requested_urls(driver: WebDriver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message: dict[str, Any] = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_docs_work_offline_and_show_this_models_fields(iris_bundle: Path, browser: WebDriver) -> None:
    wait = WebDriverWait(browser, WAIT_SECONDS)
    with start_server(iris_bundle) as srv:
        browser.get(srv.url("/docs"))
        # Swagger UI rendered the schema: the /predict operation is on the page.
        predict = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, PREDICT)))
        predict.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
        wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f"{PREDICT} .try-out__btn"))).click()
        body = wait.until(
            ec.presence_of_element_located((By.CSS_SELECTOR, f"{PREDICT} textarea.body-param__text"))
        )
        example = json.loads(body.get_attribute("value") or "")
        # The request form holds this model's own features, with its typical values.
        assert sorted(example) == sorted(IRIS_FEATURES)
        assert all(isinstance(v, float) for v in example.values())
        # And it works from the page: Execute sends the example to this server.
        browser.find_element(By.CSS_SELECTOR, f"{PREDICT} .execute").click()
        status = wait.until(
            ec.presence_of_element_located(
                (
                    By.CSS_SELECTOR,
                    f"{PREDICT} .live-responses-table tbody .response-col_status",
                )
            )
        )
        assert status.text.strip() == "200"
        answer = browser.find_element(
            By.CSS_SELECTOR,
            f"{PREDICT} .live-responses-table tbody .microlight",
        ).text
        assert json.loads(answer)["model_name"] == "iris-classifier"

        urls = requested_urls(browser)
    local = [u for u in urls if u.startswith(srv.base_url + "/")]
    assert {u.removeprefix(srv.base_url) for u in local} >= {
        "/docs",
        "/docs/static/swagger-ui-bundle.js",
        "/docs/static/swagger-ui.css",
        "/openapi.json",
        "/predict",
    }
    # Anything the page or the browser sent over the network went to this server (chrome:// and data:
    # URLs are the browser's own).
    network = [u for u in urls if u.split(":", 1)[0] in ("http", "https", "ws", "wss")]
    assert [u for u in network if u not in local] == []
