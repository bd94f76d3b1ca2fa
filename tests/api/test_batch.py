"""Several images in one request: one batch tensor, answers in order, per-image errors."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from adapter.serving.backend import Backend
from tests.helpers import PROBLEM_KEYS, assert_problem, encode, upload

SAMPLES = Path(__file__).resolve().parents[2] / "adapter" / "demo" / "samples"
DIGITS = (SAMPLES / "digits.jpg").read_bytes()
SEVEN = (SAMPLES / "seven.png").read_bytes()
BLANK = encode(np.full((200, 300, 3), 255, np.uint8), "PNG")


def _form(*images: bytes) -> dict[str, Any]:
    return {"image": [(io.BytesIO(data), f"{i}.img") for i, data in enumerate(images)]}


def _single(client: FlaskClient, path: str, data: bytes) -> dict[str, Any]:
    response = client.post(path, data=upload(data))
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def _without_timings(result: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in result.items() if key != "timings_ms"}


@pytest.fixture()
def predict_calls(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int, ...]]]:
    """The input shapes of every Predict the app sends (the real call still goes out)."""
    shapes: list[tuple[int, ...]] = []
    real = Backend.predict

    def spy(self: Backend, ref: Any, inputs: dict[str, Any], **kwargs: Any) -> Any:
        shapes.extend(tuple(array.shape) for array in inputs.values())
        return real(self, ref, inputs, **kwargs)

    monkeypatch.setattr(Backend, "predict", spy)
    yield shapes


def test_repeated_parts_are_one_batch_answered_in_order(
    client: FlaskClient, predict_calls: list[tuple[int, ...]]
) -> None:
    path = "/v1/models/digits/detect"
    alone = [_single(client, path, data) for data in (DIGITS, BLANK)]
    predict_calls.clear()
    response = client.post(path, data=_form(DIGITS, BLANK, DIGITS))
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert predict_calls == [(3, 320, 320, 3)]  # one Predict for the three images
    expected = [alone[0], alone[1], alone[0]]
    assert [_without_timings(r) for r in results] == [_without_timings(r) for r in expected]
    assert "Server-Timing" in response.headers


def test_json_array_is_a_batch_even_of_one(client: FlaskClient) -> None:
    path = "/v1/models/digit-classes/classify"
    b64 = base64.b64encode(SEVEN).decode()
    response = client.post(path, json={"images": [{"b64": b64}], "top_k": 1})
    assert response.status_code == 200, response.get_data(as_text=True)
    (result,) = response.get_json()["results"]
    assert result["classifications"][0]["label"] == "7"
    assert result["model"] == {"name": "digit-classes", "version": 1}


@pytest.mark.parametrize(
    ("bad", "status", "slug"),
    [
        (b"", 400, "invalid-image"),
        (b"hello, world", 415, "unsupported-image"),
        (DIGITS[: len(DIGITS) // 3], 400, "invalid-image"),
    ],
    ids=["empty", "text", "truncated"],
)
@pytest.mark.parametrize("model", ["digit-classes", "digit-classes-bytes"])
def test_a_bad_image_fails_alone(
    client: FlaskClient, model: str, bad: bytes, status: int, slug: str
) -> None:
    path = f"/v1/models/{model}/classify"
    response = client.post(path, data=_form(SEVEN, bad, SEVEN))
    assert response.status_code == 200, response.get_data(as_text=True)
    first, failed, last = response.get_json()["results"]
    assert first["classifications"][0]["label"] == "7"
    assert _without_timings(first) == _without_timings(last)
    assert set(failed) == {"error"}
    assert set(failed["error"]) >= PROBLEM_KEYS
    assert failed["error"]["status"] == status
    assert failed["error"]["type"].endswith("/" + slug)


def test_every_image_failing_is_still_answered_per_image(client: FlaskClient) -> None:
    response = client.post("/v1/models/digits/detect", data=_form(b"", b"nope"))
    assert response.status_code == 200
    statuses = [r["error"]["status"] for r in response.get_json()["results"]]
    assert statuses == [400, 415]


def test_a_single_part_answers_the_single_shape(client: FlaskClient) -> None:
    body = _single(client, "/v1/models/digit-classes/classify", SEVEN)
    assert "results" not in body
    assert body["classifications"][0]["label"] == "7"


def test_one_bad_image_alone_is_the_request_error(client: FlaskClient) -> None:
    response = client.post("/v1/models/digit-classes/classify", data=_form(b"hello, world"))
    assert_problem(response, 415, "unsupported-image")
