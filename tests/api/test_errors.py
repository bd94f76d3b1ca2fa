"""Bad input gets a clear 4xx problem+json body, never a 500, and nothing leaks."""

from __future__ import annotations

import io

import numpy as np
import pytest
from flask.testing import FlaskClient

from adapter.app import create_app
from adapter.config import load_settings
from adapter.modelserver.demo_models.canvas import make_canvas
from adapter.modelserver.testing import free_port
from tests.helpers import assert_problem, encode, upload


@pytest.fixture(scope="module")
def jpeg() -> bytes:
    return encode(make_canvas(np.random.default_rng(3), 640, 480).image, "JPEG")


def test_empty_upload(client: FlaskClient) -> None:
    response = client.post("/v1/models/digits/detect", data=upload(b""))
    body = assert_problem(response, 400, "invalid-image")
    assert "empty" in body["detail"]


def test_a_text_file_is_not_an_image(client: FlaskClient) -> None:
    response = client.post("/v1/models/digits/detect", data=upload(b"hello, world\n" * 50))
    assert_problem(response, 415, "unsupported-image")


def test_a_text_file_is_not_an_image_for_bytes_models_either(client: FlaskClient) -> None:
    response = client.post("/v1/models/digit-classes-bytes/classify", data=upload(b"%PDF-1.7"))
    assert_problem(response, 415, "unsupported-image")


@pytest.mark.parametrize(
    ("model", "task"), [("digits", "detect"), ("digit-classes-bytes", "classify")]
)
def test_truncated_jpeg(client: FlaskClient, jpeg: bytes, model: str, task: str) -> None:
    # For the bytes model the header is intact and the model server decodes the rest.
    response = client.post(f"/v1/models/{model}/{task}", data=upload(jpeg[: len(jpeg) // 3]))
    assert_problem(response, 400, "invalid-image")


def test_unknown_model(client: FlaskClient, jpeg: bytes) -> None:
    body = assert_problem(
        client.post("/v1/models/nope/detect", data=upload(jpeg)), 404, "unknown-model"
    )
    assert body["instance"] == "/v1/models/nope/detect"


def test_task_mismatch_is_not_found(client: FlaskClient, jpeg: bytes) -> None:
    assert_problem(client.post("/v1/models/digit-classes/detect", data=upload(jpeg)), 404)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("min_score=1.5", "min_score"),
        ("min_score=abc", "min_score"),
        ("max_results=0", "max_results"),
        ("max_results=101", "max_results"),
        ("min_scor=0.3", "min_scor"),
        ("min_score=0.1&min_score=0.2", "min_score"),
    ],
)
def test_invalid_options_name_the_field(
    client: FlaskClient, jpeg: bytes, query: str, field: str
) -> None:
    response = client.post(f"/v1/models/digits/detect?{query}", data=upload(jpeg))
    body = assert_problem(response, 422, "validation-failed")
    assert field in body["errors"]


def test_missing_image_part(client: FlaskClient) -> None:
    response = client.post("/v1/models/digits/detect", data={}, content_type="multipart/form-data")
    body = assert_problem(response, 400, "bad-request")
    assert "image" in body["errors"]


def test_unknown_form_fields_are_named(client: FlaskClient, jpeg: bytes) -> None:
    form = {**upload(jpeg), "picture": (io.BytesIO(b"x"), "a")}
    body = assert_problem(
        client.post("/v1/models/digits/detect", data=form), 422, "validation-failed"
    )
    assert "picture" in body["errors"]


def test_not_multipart(client: FlaskClient, jpeg: bytes) -> None:
    response = client.post("/v1/models/digits/detect", data=b"{}", content_type="text/plain")
    assert_problem(response, 415)


def test_too_large_upload(settings, jpeg: bytes) -> None:  # type: ignore[no-untyped-def]
    small = create_app(
        load_settings(
            {"ADAPTER_TFS_TARGET": settings.tfs_target, "ADAPTER_MAX_UPLOAD_BYTES": "1000"}
        )
    )
    response = small.test_client().post("/v1/models/digits/detect", data=upload(jpeg))
    assert_problem(response, 413)


def test_unknown_route_and_method(client: FlaskClient) -> None:
    assert_problem(client.get("/v2/nothing"), 404, "not-found")
    assert_problem(client.get("/v1/models/digits/detect"), 405)


def test_backend_down_is_a_fast_503_with_retry_after(jpeg: bytes) -> None:
    app = create_app(load_settings({"ADAPTER_TFS_TARGET": f"127.0.0.1:{free_port()}"}))
    client = app.test_client()
    response = client.post("/v1/models/digits/detect", data=upload(jpeg))
    assert_problem(response, 503, "backend-unavailable")
    assert int(response.headers["Retry-After"]) >= 1
    assert_problem(client.get("/readyz"), 503, "not-ready")
    assert client.get("/healthz").status_code == 200
