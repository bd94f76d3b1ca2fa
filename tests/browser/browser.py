"""Headless Chromium (Debian's ``chromium`` and ``chromium-driver``) under Selenium.

:func:`chromium` starts the browser with its console and network logged;
:class:`Network` reads what the pages' requests received, from the DevTools
protocol's own events, and checks each answer from the service against
``openapi.yaml`` (:func:`tests.contract.check`).
"""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

from tests.contract import check

BROWSER = "chromium"
DRIVER = "chromedriver"
DESKTOP = (1280, 900)


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """A headless Chromium, logging its console and network, closed after."""
    binary, driver = shutil.which(BROWSER), shutil.which(DRIVER)
    if binary is None or driver is None:  # make test installs them (browser-packages)
        raise RuntimeError("chromium and chromedriver are needed: run `make browser-packages`")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield browser
    finally:
        browser.quit()


def screenshot(browser: webdriver.Chrome, path: Path) -> None:
    """The whole page as a PNG at ``path``, below the window's bottom edge too."""
    size = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def console_errors(browser: webdriver.Chrome) -> list[dict[str, Any]]:
    """The console's errors since the last call (the log is read once)."""
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


@dataclass
class Answer:
    """One answer a page's request received, as the browser saw it."""

    method: str
    url: str
    status: int
    headers: dict[str, str]
    body: bytes


@dataclass
class Network:
    """The answers the browser's pages received from ``origin`` (the service)."""

    browser: webdriver.Chrome
    origin: str
    answers: list[Answer] = field(default_factory=list)

    def collect(self) -> list[Answer]:
        """Read the new network events; fetch each new answer's body while its page is open."""
        methods: dict[str, str] = {}
        received: list[tuple[str, dict[str, Any]]] = []
        for entry in self.browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                methods[params["requestId"]] = params["request"]["method"]
            elif message["method"] == "Network.responseReceived":
                received.append((params["requestId"], params["response"]))
        new = []
        for request_id, response in received:
            parts = urlsplit(response["url"])
            if f"{parts.scheme}://{parts.netloc}" != self.origin:
                continue
            new.append(
                Answer(
                    method=methods.get(request_id, "GET"),
                    url=response["url"],
                    status=response["status"],
                    headers=response["headers"],
                    body=self._body(request_id),
                )
            )
        self.answers += new
        return new

    def check_contract(self) -> list[Answer]:
        """Check every answer collected so far (and any new one) against openapi.yaml."""
        self.collect()
        for answer in self.answers:
            check(answer.method, answer.url, answer.status, answer.headers, answer.body)
        return self.answers

    def _body(self, request_id: str) -> bytes:
        try:
            got = self.browser.execute_cdp_cmd("Network.getResponseBody", {"requestId": request_id})
        except WebDriverException:  # a preflight, a 304, or a body the page dropped: none
            return b""
        if got.get("base64Encoded"):
            return base64.b64decode(got["body"])
        return str(got["body"]).encode("utf-8")
