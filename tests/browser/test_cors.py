"""CORS as a browser enforces it: a page on another origin calls the service with ``fetch``.

The services allow ``other_site.url`` (``127.0.0.1``) and not
``other_site.other_url`` (``localhost``: the same page, another origin).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import requests
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.browser import Network, console_errors
from tests.browser.conftest import KEY, Site
from tests.browser.test_demo_page import (
    DETECT,
    DIGITS,
    PAGE_DEFAULTS,
    WAIT_S,
    api,
    assert_boxes_match,
    give,
    open_page,
)

# Run on the other site's page: post the image as a form; what the page can read.
FETCH = """
const [url, headers, image, done] = arguments;
const bytes = Uint8Array.from(atob(image), (c) => c.charCodeAt(0));
const form = new FormData();
form.append("image", new Blob([bytes], {type: "image/jpeg"}), "digits.jpg");
fetch(url, {method: "POST", body: form, headers})
  .then(async (r) => done({
    status: r.status,
    requestId: r.headers.get("X-Request-ID"),
    serverTiming: r.headers.get("Server-Timing"),
    contentType: r.headers.get("Content-Type"),
    body: await r.json(),
  }))
  .catch((e) => done({error: String(e)}));
"""
IMAGE = base64.b64encode(DIGITS.read_bytes()).decode("ascii")


def post_from(
    browser: webdriver.Chrome, page: str, url: str, headers: dict[str, str]
) -> dict[str, Any]:
    browser.get(page)
    browser.set_script_timeout(30)
    result: dict[str, Any] = browser.execute_async_script(FETCH, url, headers, IMAGE)
    return result


def test_a_page_on_an_allowed_origin_reads_the_answer_and_its_exposed_headers(
    browser: webdriver.Chrome, service: str, other_site: Site, network: Network
) -> None:
    got = post_from(browser, other_site.url, service + DETECT, {"X-Request-ID": "from-afar-1"})
    _, expected = api(service, DETECT, DIGITS)
    assert got["status"] == 200, got
    assert got["body"]["detections"] == expected["detections"]
    assert got["requestId"] == "from-afar-1"  # exposed: X-Request-ID, Server-Timing
    assert got["serverTiming"].startswith("decode;dur=")
    assert console_errors(browser) == []
    answers = network.collect()
    assert [(a.method, a.headers.get("Access-Control-Allow-Origin")) for a in answers][-1] == (
        "POST",
        other_site.url,
    )


def test_a_page_on_another_origin_is_blocked(
    browser: webdriver.Chrome, service: str, other_site: Site, network: Network
) -> None:
    got = post_from(browser, other_site.other_url, service + DETECT, {})
    assert got == {"error": "TypeError: Failed to fetch"}
    messages = [entry["message"] for entry in console_errors(browser)]
    assert any("blocked by CORS policy" in message for message in messages), messages
    # What the service answered (a form needs no preflight) had no CORS header:
    # the browser kept it from the page, and from its own network log.
    assert [a for a in network.collect() if a.method == "POST"] == []


def test_with_keys_on_the_preflight_needs_no_key_and_a_401_is_readable(
    browser: webdriver.Chrome, keyed_service: tuple[str, Path], other_site: Site
) -> None:
    url, log = keyed_service
    network = Network(browser, url)
    browser.get_log("performance")
    # X-Request-ID makes it a request the browser checks with a preflight first.
    refused = post_from(browser, other_site.url, url + DETECT, {"X-Request-ID": "no-key-1"})
    assert refused["status"] == 401, refused
    assert refused["contentType"] == "application/problem+json"
    assert refused["body"]["title"] == "Unauthorized"
    assert refused["requestId"] == "no-key-1"
    network.collect()  # before the next page drops the answers' bodies
    served = post_from(browser, other_site.url, url + DETECT, {"X-API-Key": KEY})
    assert served["status"] == 200, served
    assert len(served["body"]["detections"]) == 8
    preflights = [
        line
        for line in map(_json_or_none, log.read_text().splitlines())
        if line and line.get("method") == "OPTIONS" and line.get("path") == DETECT
    ]
    assert [line["status"] for line in preflights] == [200, 200]  # neither carried a key
    network.check_contract()


def test_with_keys_on_the_page_asks_for_a_key_and_keeps_it_to_itself(
    browser: webdriver.Chrome, keyed_service: tuple[str, Path]
) -> None:
    url, _ = keyed_service
    network = Network(browser, url)
    browser.get_log("performance")
    open_page(browser, url)
    field = browser.find_element(By.ID, "api-key")
    assert field.is_displayed() and field.get_attribute("type") == "password"
    needed = requests.get(url + "/v1/models", timeout=10).json()["detail"]
    assert browser.find_element(By.ID, "status").text == needed
    field.send_keys(KEY[:-1])  # one character short: the page says so
    wrong = requests.get(url + "/v1/models", headers={"X-API-Key": KEY[:-1]}, timeout=10)
    WebDriverWait(browser, WAIT_S).until(
        lambda b: b.find_element(By.ID, "status").text == wrong.json()["detail"]
    )
    field.send_keys(KEY[-1])
    WebDriverWait(browser, WAIT_S).until(lambda b: b.find_element(By.ID, "model").is_enabled())
    give(browser, DIGITS)
    _, expected = api_with_key(url)
    assert_boxes_match(browser, expected)
    stored = browser.execute_script(
        "return [localStorage.length, sessionStorage.length, document.cookie]"
    )
    assert stored == [0, 0, ""]
    network.check_contract()


def api_with_key(url: str) -> tuple[int, dict[str, Any]]:
    files = {"image": (DIGITS.name, DIGITS.read_bytes())}
    response = requests.post(
        url + DETECT, files=files, params=PAGE_DEFAULTS, headers={"X-API-Key": KEY}, timeout=30
    )
    return response.status_code, response.json()


def _json_or_none(line: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(line)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
