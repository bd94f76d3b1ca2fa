"""Annotated answers: ``Accept: image/png|jpeg`` gets the upload back with the results drawn."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image

from adapter.annotate import class_color
from tests.helpers import assert_problem, box_tuple, upload

SAMPLES = Path(__file__).resolve().parents[2] / "adapter" / "demo" / "samples"
DIGITS = (SAMPLES / "digits.jpg").read_bytes()
SEVEN = (SAMPLES / "seven.png").read_bytes()
DETECT = "/v1/models/digits/detect"
CLASSIFY = "/v1/models/digit-classes/classify"


def pixels(data: bytes, fmt: str | None = None) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    if fmt is not None:
        assert image.format == fmt
    return np.asarray(image.convert("RGB")).astype(np.int16)


def json_answer(client: FlaskClient, path: str, data: bytes) -> dict[str, Any]:
    response = client.post(path, data=upload(data))
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


def drawn_boxes(drawn: np.ndarray, detections: list[dict[str, Any]]) -> np.ndarray:
    """Asserts every box's edges are drawn in its class colour; returns where nothing may be."""
    height, width = drawn.shape[:2]
    untouched = np.ones((height, width), dtype=bool)
    for detection in detections:
        x0, y0, x1, y1 = (round(v) for v in box_tuple(detection["box"]))
        color = class_color(detection["class_id"])
        # Each edge is a line of the class colour (another box or caption may cross it).
        edges = [drawn[y0:y1, x0], drawn[y0:y1, x1 - 1], drawn[y0, x0:x1], drawn[y1 - 1, x0:x1]]
        for edge in edges:
            assert (edge == color).all(axis=-1).mean() > 0.5, detection
        # The box, its caption band above and a caption wider than the box.
        untouched[max(0, y0 - 60) : y1, x0 : max(x1, x0 + 160)] = False
    assert untouched.mean() > 0.3
    return untouched


def test_detect_draws_the_json_boxes_on_the_upload(client: FlaskClient) -> None:
    answer = json_answer(client, DETECT, DIGITS)
    assert len(answer["detections"]) >= 4
    response = client.post(DETECT, data=upload(DIGITS), headers={"Accept": "image/png"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "image/png"
    drawn = pixels(response.data, "PNG")
    height, width = drawn.shape[:2]
    assert {"width": width, "height": height} == answer["image"]
    untouched = drawn_boxes(drawn, answer["detections"])
    assert np.abs(drawn - pixels(DIGITS))[untouched].max() <= 2  # elsewhere: the upload itself


def test_classify_writes_the_top_classes_on_the_upload(client: FlaskClient) -> None:
    answer = json_answer(client, CLASSIFY, SEVEN)
    assert answer["classifications"][0]["label"] == "7"
    response = client.post(CLASSIFY, data=upload(SEVEN), headers={"Accept": "image/jpeg"})
    steps = [part.split(";")[0].strip() for part in response.headers["Server-Timing"].split(",")]
    assert steps == ["decode", "inference", "mapping", "annotate"]
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "image/jpeg"
    drawn = pixels(response.data, "JPEG")
    height, width = drawn.shape[:2]
    assert {"width": width, "height": height} == answer["image"]
    difference = np.abs(drawn - pixels(SEVEN)).max(axis=-1)
    assert difference[:12, :30].mean() > 40  # the caption panel at the top left
    assert difference[height // 2 :].mean() < 3  # the bottom half is the digit, re-encoded
    swatch = drawn[2:8, 2:6].reshape(-1, 3)
    assert np.abs(swatch - class_color(answer["classifications"][0]["class_id"])).max() < 24


def test_sideways_photo_is_drawn_upright(client: FlaskClient) -> None:
    stored = Image.open(io.BytesIO(DIGITS)).rotate(90, expand=True)  # stored on its side
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed turned 90 degrees clockwise: upright again
    stored.save(buffer, format="JPEG", quality=95, exif=exif)
    data = buffer.getvalue()
    answer = json_answer(client, DETECT, data)
    assert answer["image"] == {"width": 1280, "height": 720}
    response = client.post(DETECT, data=upload(data), headers={"Accept": "image/png"})
    assert response.status_code == 200, response.get_data(as_text=True)
    drawn = pixels(response.data, "PNG")
    assert drawn.shape == (720, 1280, 3)
    untouched = drawn_boxes(drawn, answer["detections"])
    assert np.abs(drawn - pixels(DIGITS))[untouched].mean() < 2  # upright, as first uploaded


@pytest.mark.parametrize(
    "accept", ["image/png", "image/jpeg", "image/jpeg, application/json;q=0.5", "image/*"]
)
def test_image_accept_for_a_batch_is_not_acceptable(client: FlaskClient, accept: str) -> None:
    form = {"image": [(io.BytesIO(DIGITS), "a.jpg"), (io.BytesIO(SEVEN), "b.png")]}
    response = client.post(DETECT, data=form, headers={"Accept": accept})
    assert_problem(response, 406, "not-acceptable")


def test_image_accept_for_a_json_array_is_not_acceptable(client: FlaskClient) -> None:
    body = {"images": [{"b64": base64.b64encode(SEVEN).decode()}]}
    response = client.post(CLASSIFY, json=body, headers={"Accept": "image/png"})
    assert_problem(response, 406, "not-acceptable")


@pytest.mark.parametrize("path", [DETECT, CLASSIFY])
def test_accept_without_json_or_an_image_is_not_acceptable(client: FlaskClient, path: str) -> None:
    response = client.post(path, data=upload(SEVEN), headers={"Accept": "text/html"})
    assert_problem(response, 406, "not-acceptable")


def test_json_is_still_the_answer_when_preferred(client: FlaskClient) -> None:
    accept = "application/json, image/png;q=0.5"
    response = client.post(CLASSIFY, data=upload(SEVEN), headers={"Accept": accept})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    assert response.get_json()["classifications"][0]["label"] == "7"
    assert "Accept" in response.vary  # caches keep the JSON and the picture apart


def test_errors_are_problems_even_when_an_image_is_asked_for(client: FlaskClient) -> None:
    response = client.post(DETECT, data=upload(b"not an image"), headers={"Accept": "image/png"})
    assert_problem(response, 415, "unsupported-image")
    response = client.post(CLASSIFY, data=upload(b""), headers={"Accept": "image/jpeg"})
    assert_problem(response, 400, "invalid-image")
