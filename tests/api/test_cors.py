"""CORS headers (``ADAPTER_CORS_ORIGINS``): who gets them, and what a preflight costs.

The browser's side (a page on another origin calling ``fetch``) is in
``tests/browser/test_cors.py``.
"""

from __future__ import annotations

import dataclasses

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from adapter.app import create_app
from adapter.config import Settings
from tests.e2e.backends import SEVEN
from tests.helpers import assert_problem, upload

SITE = "https://app.example.com"
KEY = "k3y-c0rs-3a7f9c1d2e4b6a80"
DETECT = "/v1/models/digits/detect"
CLASSIFY = "/v1/models/digit-classes/classify"
PREFLIGHT = {
    "Origin": SITE,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "x-api-key, x-request-id, x-request-timeout-ms, "
    "content-type, authorization",
}


def _cors_headers(response: TestResponse) -> list[str]:
    return [name for name, _ in response.headers if name.startswith("Access-Control-")]


def _client(settings: Settings, **changes: object) -> FlaskClient:
    app = create_app(dataclasses.replace(settings, **changes))  # type: ignore[arg-type]
    app.config["TESTING"] = True
    return app.test_client()


@pytest.fixture(scope="module")
def cors(settings: Settings) -> FlaskClient:
    return _client(settings, cors_origins=(SITE, "http://localhost:5173"), cors_max_age_s=300)


@pytest.fixture(scope="module")
def keyed(settings: Settings) -> FlaskClient:
    return _client(settings, cors_origins=(SITE,), api_keys=(KEY,))


def test_off_by_default_no_answer_carries_a_cors_header(client: FlaskClient) -> None:
    preflight = client.options(DETECT, headers=PREFLIGHT)
    answer = client.post(CLASSIFY, data=upload(SEVEN), headers={"Origin": SITE})
    for response in (preflight, answer):
        assert _cors_headers(response) == []


def test_a_preflight_from_an_allowed_origin_gets_every_cors_header(cors: FlaskClient) -> None:
    response = cors.options(DETECT, headers=PREFLIGHT)
    assert response.status_code == 200
    headers = response.headers
    assert headers["Access-Control-Allow-Origin"] == SITE
    assert set(headers["Access-Control-Allow-Methods"].split(", ")) == {"GET", "POST", "OPTIONS"}
    assert set(headers["Access-Control-Allow-Headers"].split(", ")) == {
        "authorization",
        "content-type",
        "x-api-key",
        "x-request-id",
        "x-request-timeout-ms",
    }
    assert headers["Access-Control-Max-Age"] == "300"
    assert "Access-Control-Allow-Credentials" not in headers
    assert "Origin" in headers.get_all("Vary")[0]


def test_an_answer_to_an_allowed_origin_exposes_its_headers(cors: FlaskClient) -> None:
    response = cors.post(CLASSIFY, data=upload(SEVEN), headers={"Origin": SITE})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SITE
    exposed = set(response.headers["Access-Control-Expose-Headers"].split(", "))
    assert exposed == {"X-Request-ID", "Server-Timing", "Retry-After"}
    assert "Origin" in response.headers["Vary"]
    # A problem answer too: the page reads its title and detail.
    problem = cors.post(CLASSIFY, data=upload(b"not an image"), headers={"Origin": SITE})
    assert_problem(problem, 415, "unsupported-image")
    assert problem.headers["Access-Control-Allow-Origin"] == SITE


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example.com",
        "https://app.example.com.evil.example.com",  # an allowed origin as a prefix
        "http://app.example.com",  # another scheme is another origin
        "https://app.example.com:8443",
        "null",
    ],
)
def test_an_origin_not_allowed_gets_no_cors_header(cors: FlaskClient, origin: str) -> None:
    for response in (
        cors.options(DETECT, headers={**PREFLIGHT, "Origin": origin}),
        cors.post(CLASSIFY, data=upload(SEVEN), headers={"Origin": origin}),
    ):
        assert _cors_headers(response) == []
        assert "Origin" in response.headers["Vary"]  # a shared cache keeps them apart


def test_a_request_without_an_origin_gets_no_cors_header(cors: FlaskClient) -> None:
    response = cors.get("/v1/models")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_any_origin_is_answered_with_a_wildcard(settings: Settings) -> None:
    anyone = _client(settings, cors_origins=("*",))
    response = anyone.post(CLASSIFY, data=upload(SEVEN), headers={"Origin": "https://a.test"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_with_keys_on_a_preflight_needs_none_and_the_real_request_does(
    keyed: FlaskClient,
) -> None:
    preflight = keyed.options(DETECT, headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == SITE
    refused = keyed.post(CLASSIFY, data=upload(SEVEN), headers={"Origin": SITE})
    assert_problem(refused, 401, "unauthorized")
    assert refused.headers["Access-Control-Allow-Origin"] == SITE  # the page can read it
    served = keyed.post(CLASSIFY, data=upload(SEVEN), headers={"Origin": SITE, "X-API-Key": KEY})
    assert served.status_code == 200


def test_a_preflight_never_reaches_the_model_server(settings: Settings) -> None:
    # Nothing listens at this target: every call to it would fail (a 503).
    offline = _client(settings, cors_origins=(SITE,), tfs_target="127.0.0.1:9")
    for path in (DETECT, CLASSIFY, "/v1/models", "/v1/models/digits"):
        response = offline.options(path, headers=PREFLIGHT)
        assert response.status_code == 200, path
        assert response.headers["Access-Control-Allow-Origin"] == SITE
        assert response.get_data() == b""
