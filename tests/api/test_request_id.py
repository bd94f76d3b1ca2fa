"""``X-Request-ID``: kept when sane, generated otherwise, echoed everywhere, in every log line."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapter.api import context
from adapter.app import create_app
from adapter.config import Settings, load_settings
from adapter.modelserver.testing import free_port
from tests.e2e.backends import SAMPLES
from tests.helpers import assert_problem, upload

DIGITS = (SAMPLES / "digits.jpg").read_bytes()
GENERATED = re.compile(r"[0-9a-f]{32}")
BACKEND_LOGGER = "adapter.serving.backend"


@pytest.fixture()
def captured(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Log records of this test, with the request id the app's log handlers add."""
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(context.RequestIdFilter())
    yield caplog


@pytest.fixture(scope="module")
def unreachable_app() -> Flask:
    """The demo models, with nothing listening where their model server should be."""
    app = create_app(load_settings({"ADAPTER_TFS_TARGET": f"127.0.0.1:{free_port()}"}))
    app.config["TESTING"] = True
    return app


def test_an_id_is_generated_when_the_client_sends_none(client: FlaskClient) -> None:
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert GENERATED.fullmatch(first)
    assert GENERATED.fullmatch(second)
    assert first != second


@pytest.mark.parametrize(
    "given", ["a", "req-42", "0f.1_2:3+4=5/6-7", "Z" * 128, "9b2c6d34-6a4e-4b8e-9f0a-1c2d3e4f5a6b"]
)
def test_a_valid_client_id_is_echoed(client: FlaskClient, given: str) -> None:
    response = client.get("/v1/models", headers={"X-Request-ID": given})
    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == given


@pytest.mark.parametrize(
    "given",
    [
        "",
        "x" * 129,
        "x" * 200,
        "two words",
        "semi;colon",
        'quote"d',
        "naïve",
        "abc\r\nINFO adapter forged log line",
        "abc\nrequest_id=forged",
    ],
)
def test_an_invalid_client_id_is_replaced(client: FlaskClient, given: str) -> None:
    # Set in the WSGI environ: the test client itself refuses CR/LF in headers.
    response = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": given})
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


def test_a_successful_inference_echoes_the_id(client: FlaskClient) -> None:
    response = client.post(
        "/v1/models/digits/detect", data=upload(DIGITS), headers={"X-Request-ID": "detect-1"}
    )
    assert response.status_code == 200
    assert response.get_json()["detections"]
    assert response.headers["X-Request-ID"] == "detect-1"


def test_problem_bodies_carry_the_id_of_the_header(client: FlaskClient) -> None:
    response = client.post(
        "/v1/models/digits/detect", data=upload(b"not an image"), headers={"X-Request-ID": "bad-1"}
    )
    body = assert_problem(response, 415, "unsupported-image")
    assert body["request_id"] == response.headers["X-Request-ID"] == "bad-1"

    generated = assert_problem(client.post("/v1/models/digits/detect", data=upload(b"")), 400)
    assert GENERATED.fullmatch(generated["request_id"])


def test_404_and_405_carry_the_id(client: FlaskClient) -> None:
    for response, status in (
        (client.get("/no/such/endpoint"), 404),
        (client.get("/v1/models/digits/detect"), 405),
    ):
        body = assert_problem(response, status)
        assert GENERATED.fullmatch(body["request_id"])
        assert body["request_id"] == response.headers["X-Request-ID"]
    given = client.delete("/healthz", headers={"X-Request-ID": "delete-1"})
    assert assert_problem(given, 405)["request_id"] == given.headers["X-Request-ID"] == "delete-1"


def test_413_carries_the_id(settings: Settings) -> None:
    app = create_app(dataclasses.replace(settings, max_upload_bytes=1024))
    response = app.test_client().post(
        "/v1/models/digits/detect", data=upload(DIGITS), headers={"X-Request-ID": "big-1"}
    )
    body = assert_problem(response, 413, "payload-too-large")
    assert body["request_id"] == response.headers["X-Request-ID"] == "big-1"


def test_backend_failures_are_logged_with_the_request_id(
    unreachable_app: Flask, captured: pytest.LogCaptureFixture
) -> None:
    response = unreachable_app.test_client().post(
        "/v1/models/digits/detect", data=upload(DIGITS), headers={"X-Request-ID": "down-7"}
    )
    body = assert_problem(response, 503, "backend-unavailable")
    assert body["request_id"] == "down-7"
    logged = [r for r in captured.records if r.name == BACKEND_LOGGER]
    assert logged, "the backend failure was not logged"
    assert {r.request_id for r in logged} == {"down-7"}  # type: ignore[attr-defined]
    line = logging.Formatter(context.LOG_FORMAT).format(logged[-1])
    assert "request_id=down-7" in line and "UNAVAILABLE" in line

    logging.getLogger("adapter.test").warning("outside any request")
    assert captured.records[-1].request_id == "-"  # type: ignore[attr-defined]


def test_concurrent_requests_log_only_their_own_ids(
    unreachable_app: Flask, captured: pytest.LogCaptureFixture
) -> None:
    ids = [f"thread-{n}" for n in range(4)]  # below the breaker's 5 failures
    statuses: dict[str, int] = {}

    def call(request_id: str) -> None:
        response = unreachable_app.test_client().post(
            "/v1/models/digits/detect", data=upload(DIGITS), headers={"X-Request-ID": request_id}
        )
        assert response.headers["X-Request-ID"] == request_id
        statuses[request_id] = response.status_code

    threads = [threading.Thread(target=call, args=(request_id,)) for request_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == dict.fromkeys(ids, 503)
    # Each request logs its final failure once, under its own id, whatever the interleaving.
    final = Counter(
        r.request_id  # type: ignore[attr-defined]
        for r in captured.records
        if r.name == BACKEND_LOGGER and r.levelno == logging.WARNING
    )
    assert final == Counter(ids)
