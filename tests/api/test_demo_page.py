"""The demo page's files: where they are served, with what headers; off with ADAPTER_DEMO_PAGE.

What the page does in a browser is in ``tests/browser/test_demo_page.py``.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
from flask.testing import FlaskClient

from adapter.app import create_app
from adapter.config import Settings
from tests.helpers import assert_problem

KEY = "k3y-d3mo-3a7f9c1d2e4b6a80"


@pytest.mark.parametrize("path", ["/", "/demo"])
def test_the_page_is_at_the_root_and_at_demo(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert '<script type="module" src="/demo/demo.js"></script>' in page
    assert '<link rel="stylesheet" href="/demo/demo.css">' in page
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_loads_nothing_from_elsewhere(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    script = client.get("/demo/demo.js").get_data(as_text=True)
    for text in (page, script, client.get("/demo/demo.css").get_data(as_text=True)):
        assert not re.search(r"https?://", text)
    # Every label names a control that is there.
    for target in re.findall(r'<label for="([^"]+)"', page):
        assert f'id="{target}"' in page


@pytest.mark.parametrize(
    ("name", "mimetype"),
    [("demo.js", "text/javascript"), ("demo.css", "text/css"), ("digits.jpg", "image/jpeg")],
)
def test_its_files_are_served_revalidated(client: FlaskClient, name: str, mimetype: str) -> None:
    response = client.get(f"/demo/{name}")
    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.cache_control.no_cache
    again = client.get(f"/demo/{name}", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("name", ["index.html", "registry.yaml", "..%2Fregistry.yaml", "seven.png"])
def test_nothing_else_is_served_under_demo(client: FlaskClient, name: str) -> None:
    assert_problem(client.get(f"/demo/{name}"), 404, "not-found")


def test_the_page_is_open_with_keys_on(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, api_keys=(KEY,)))
    keyed = app.test_client()
    for path in ("/", "/demo", "/demo/demo.js", "/demo/digits.jpg"):
        assert keyed.get(path).status_code == 200, path
    assert_problem(keyed.get("/v1/models"), 401, "unauthorized")


def test_off_with_adapter_demo_page_false(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, demo_page=False))
    plain = app.test_client()
    for path in ("/", "/demo", "/demo/demo.js"):
        assert_problem(plain.get(path), 404, "not-found")
