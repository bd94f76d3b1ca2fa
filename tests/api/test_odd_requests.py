"""Odd requests found by review: each once gave a 500, a wrong status or a broken contract."""

from __future__ import annotations

import dataclasses
import http.client
import logging
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from flask.testing import FlaskClient

from adapter.app import create_app
from adapter.config import ConfigError, Settings, load_settings
from adapter.modelserver.testing import free_port
from tests.contract import check
from tests.helpers import upload

ROOT = Path(__file__).resolve().parents[2]
SEVEN = (ROOT / "adapter" / "demo" / "samples" / "seven.png").read_bytes()
CLASSIFY = "/v1/models/digit-classes/classify"
DETECT = "/v1/models/digits/detect"
KEY = "k3y-0ne-3a7f9c1d2e4b6a80"


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def _problem_type(response) -> str:  # type: ignore[no-untyped-def]
    return str(response.get_json()["type"]).rsplit("/", 1)[-1]


# A deeply nested JSON body: json.loads raises RecursionError, not a ValueError.
def test_deeply_nested_json_is_a_400_not_a_500(client: FlaskClient) -> None:
    body = '{"image": ' + "[" * 100_000 + "]" * 100_000 + "}"
    response = client.post(CLASSIFY, data=body, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert _problem_type(response) == "bad-request"


# X-Request-Timeout-Ms: str.isdigit() accepts what int() refuses.
def test_timeout_header_with_a_superscript_digit_is_a_422(client: FlaskClient) -> None:
    response = client.post(
        CLASSIFY, data=SEVEN, content_type="image/png",
        headers={"X-Request-Timeout-Ms": "\u00b2"},
    )  # fmt: skip
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "X-Request-Timeout-Ms" in response.get_json()["errors"]


def test_timeout_header_with_thousands_of_digits_is_a_422(client: FlaskClient) -> None:
    response = client.post(
        CLASSIFY, data=SEVEN, content_type="image/png",
        headers={"X-Request-Timeout-Ms": "9" * 5000},
    )  # fmt: skip
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "X-Request-Timeout-Ms" in response.get_json()["errors"]


def test_live_timeout_header_byte_b2_is_not_a_server_error(live_url: str) -> None:
    url = urlsplit(live_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        connection.putrequest("POST", CLASSIFY)
        connection.putheader("Content-Type", "image/png")
        connection.putheader("Content-Length", str(len(SEVEN)))
        connection.putheader("X-Request-Timeout-Ms", "\u00b2")  # sent as latin-1: one 0xB2 byte
        connection.endheaders(SEVEN)
        response = connection.getresponse()
        status, body = response.status, response.read()
    finally:
        connection.close()
    assert status == 422, body


# Integer options in a JSON body: a non-strict Integer would truncate 2.7 to 2.
def test_a_fractional_max_results_in_json_is_a_422(client: FlaskClient) -> None:
    response = client.post(DETECT, json={"image": {"b64": _b64(SEVEN)}, "max_results": 2.7})
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert "max_results" in response.get_json()["errors"]


def test_a_fractional_top_k_in_json_is_a_422(client: FlaskClient) -> None:
    response = client.post(CLASSIFY, json={"image": {"b64": _b64(SEVEN)}, "top_k": 2.9})
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert "top_k" in response.get_json()["errors"]


# `image` sent as a text field (curl -F image=<file, FormData.append("image", dataUrl)).
def test_an_image_sent_as_a_text_field_is_a_400_about_the_image_part(client: FlaskClient) -> None:
    response = client.post(
        CLASSIFY, data={"image": "iVBORw0KGgo="}, content_type="multipart/form-data"
    )
    # Same answer as a form with no 'image' file part, not "unexpected fields; use the query".
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["errors"]["image"] != ["Unknown field."]


# GET /v1/models for a registry entry left to the signature, before it is resolved.
def test_models_list_follows_the_spec_before_a_signature_is_read(tmp_path: Path) -> None:
    registry = tmp_path / "registry.yaml"
    labels = ROOT / "adapter" / "demo" / "labels" / "digits.txt"
    registry.write_text(  # docs/registry.md's "signature says it all" classifier
        "models:\n  digit-classes:\n    task: classification\n"
        f"    serving: {{name: digit_classifier}}\n    input: {{}}\n    labels: {labels}\n"
        "    background_class: 0\n",
        encoding="utf-8",
    )
    app = create_app(
        load_settings({
            "ADAPTER_MODELS": str(registry),
            "ADAPTER_TFS_TARGET": f"127.0.0.1:{free_port()}",  # the model server is down
            "ADAPTER_STATUS_TIMEOUT_MS": "200",
        })
    )  # fmt: skip
    client = app.test_client()
    for path in ("/v1/models", "/v1/models/digit-classes"):
        response = client.get(path)
        assert response.status_code == 200
        check("GET", path, response.status_code, response.headers, response.get_data())


# Log forging through the request path, as through the request id.
def test_rejected_requests_cannot_forge_log_lines_through_the_path(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(dataclasses.replace(settings, api_keys=(KEY,)))
    caplog.set_level(logging.INFO)
    forged = "/v1/models%0AINFO adapter.api.auth request_id=admin accepted GET /v1/models"
    response = app.test_client().get(forged)
    assert response.status_code == 401
    messages = [r.getMessage() for r in caplog.records if r.name == "adapter.api.auth"]
    assert messages, "expected a 'rejected' log line"
    assert not any("\n" in message or "\r" in message for message in messages), messages


# Werkzeug's merge_slashes redirect would escape the problem+json error handling.
def test_a_double_slash_path_is_not_an_html_redirect(client: FlaskClient) -> None:
    response = client.post("/v1/models//digit-classes/classify", data=upload(SEVEN))
    assert response.mimetype in ("application/json", "application/problem+json"), (
        response.status_code, response.mimetype, response.headers.get("Location"),
    )  # fmt: skip


# docs/configuration.md: "validated there: a bad value stops the start with a message naming it".
def test_a_bad_log_level_stops_the_start_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="ADAPTER_LOG_LEVEL"):
        load_settings({"ADAPTER_LOG_LEVEL": "verbose"})


# /docs "Try it out" targets the spec's first server, so it must be the serving host.
def test_the_docs_page_tries_requests_against_the_service_that_served_it(
    client: FlaskClient,
) -> None:
    served = yaml.safe_load(
        client.get("/openapi.yaml", base_url="https://api.example.com").get_data()
    )
    urls = [server["url"] for server in served.get("servers", [])]
    assert not urls or urls[0].startswith("/") or urls[0].startswith("https://api.example.com"), (
        urls
    )
