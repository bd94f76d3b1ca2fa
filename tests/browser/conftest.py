"""The demo page and CORS in a real browser: real gunicorn, the real local model server.

Two services: ``service`` lets the ``other_site`` pages on ``ALLOWED`` call
it (CORS); ``keyed_service`` also needs an API key. ``other_site`` is a
second local web server: the same page reached as ``127.0.0.1`` and as
``localhost`` is two origins, one allowed and one not.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from selenium import webdriver

from adapter.modelserver.testing import ModelServer
from tests.browser.browser import Network, chromium
from tests.helpers import adapter_under_gunicorn

KEY = "br0wser-k3y-6c1f0a9e2d4b"
OUTPUT = Path(__file__).resolve().parents[2] / "var" / "test-output" / "browser"


@dataclass(frozen=True)
class Site:
    url: str  # on the origin the services allow
    other_url: str  # the same page, on an origin they do not


class _Blank(BaseHTTPRequestHandler):
    """Any path: an empty page, for scripts that run on this origin."""

    def do_GET(self) -> None:
        body = b"<!DOCTYPE html><html lang='en'><head><title>Another site</title></head></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def other_site() -> Iterator[Site]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Blank)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(url=f"http://127.0.0.1:{port}", other_url=f"http://localhost:{port}")
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def output_dir() -> Path:
    """Where the tests write what a person may look at (screenshots)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    return OUTPUT


@pytest.fixture(scope="session")
def service(model_server: ModelServer, other_site: Site, output_dir: Path) -> Iterator[str]:
    env = {"ADAPTER_CORS_ORIGINS": other_site.url}
    log = output_dir / "service.log"
    with adapter_under_gunicorn(model_server.target, env, log) as (url, _):
        yield url


@pytest.fixture(scope="session")
def keyed_service(
    model_server: ModelServer, other_site: Site, output_dir: Path
) -> Iterator[tuple[str, Path]]:
    """A service that needs ``KEY``, and its log (the access log included)."""
    env = {"ADAPTER_CORS_ORIGINS": other_site.url, "ADAPTER_API_KEYS": KEY}
    log = output_dir / "keyed-service.log"
    with adapter_under_gunicorn(model_server.target, env, log) as (url, _):
        yield url, log


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


@pytest.fixture()
def network(browser: webdriver.Chrome, service: str) -> Iterator[Network]:
    """The answers from ``service`` this test's pages received, each checked against
    openapi.yaml when the test ends (and by the test, before it leaves a page)."""
    browser.get_log("performance")  # what earlier tests left
    watched = Network(browser, service)
    yield watched
    watched.check_contract()
