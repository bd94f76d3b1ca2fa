"""Detection end to end: held-out digits on canvases -> HTTP -> gRPC -> labelled pixel boxes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient

from adapter.modelserver.demo_models.canvas import make_canvas
from tests.helpers import box_tuple, encode, iou, unmatched_digits, upload

SIZES = [(200, 900), (900, 200), (1280, 720), (3000, 2000)]
CANVASES_PER_FORMAT = 4
MIN_RECALL = 0.85  # share of drawn digits found with the right label and IoU >= 0.5
MIN_PRECISION = 0.85  # share of returned detections that are such a match


def _check_shape(body: dict[str, Any], model: str, width: int, height: int) -> None:
    assert body["image"] == {"width": width, "height": height}
    assert body["model"] == {"name": model, "version": 1}
    scores = [d["score"] for d in body["detections"]]
    assert scores == sorted(scores, reverse=True)
    assert all(score >= 0.5 for score in scores)  # the default min_score
    for det in body["detections"]:
        x0, y0, x1, y1 = box_tuple(det["box"])
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        norm = box_tuple(det["box_normalized"])
        assert norm == pytest.approx((x0 / width, y0 / height, x1 / width, y1 / height), abs=1e-5)
        assert det["class_id"] == int(det["label"]) + 1  # TF OD API classes are 1-based


def _assert_every_digit_is_boxed(
    client: FlaskClient, model: str, data: bytes, squares: list[tuple[float, ...]]
) -> None:
    """Whatever the label, every drawn digit has a box with IoU >= 0.5 in original pixels."""
    every = client.post(f"/v1/models/{model}/detect?min_score=0", data=upload(data)).get_json()
    boxes = [box_tuple(d["box"]) for d in every["detections"]]
    for square in squares:
        assert max((iou(box, square) for box in boxes), default=0.0) >= 0.5, square


@pytest.mark.parametrize("model", ["digits", "digits-stretch"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_held_out_digits_are_found_in_original_pixels(
    client: FlaskClient, model: str, size: tuple[int, int]
) -> None:
    width, height = size
    rng = np.random.default_rng(width * 7 + height)
    drawn = found = returned = 0
    for fmt in ("JPEG", "PNG"):
        for _ in range(CANVASES_PER_FORMAT):
            canvas = make_canvas(rng, width, height)
            data = encode(canvas.image, fmt)
            response = client.post(f"/v1/models/{model}/detect", data=upload(data))
            assert response.status_code == 200, response.get_data(as_text=True)
            body = response.get_json()
            _check_shape(body, model, width, height)
            missed = unmatched_digits(body["detections"], canvas.boxes, canvas.labels)
            _assert_every_digit_is_boxed(client, model, data, canvas.boxes)
            drawn += len(canvas.labels)
            found += len(canvas.labels) - len(missed)
            returned += len(body["detections"])
    assert found / drawn >= MIN_RECALL, f"found {found} of {drawn} digits"
    assert found / max(returned, 1) >= MIN_PRECISION, f"{found} of {returned} detections right"


def test_min_score_and_max_results_filter(client: FlaskClient) -> None:
    canvas = make_canvas(np.random.default_rng(5), 1280, 720, max_digits=8)
    data = encode(canvas.image, "PNG")
    everything = client.post("/v1/models/digits/detect?min_score=0", data=upload(data)).get_json()[
        "detections"
    ]
    assert len(everything) >= len(canvas.labels)

    top = client.post("/v1/models/digits/detect?max_results=1", data=upload(data)).get_json()
    assert top["detections"] == [everything[0]]

    strict = client.post("/v1/models/digits/detect?min_score=0.999999", data=upload(data))
    assert all(d["score"] >= 0.999999 for d in strict.get_json()["detections"])


def test_timings_are_reported(client: FlaskClient) -> None:
    canvas = make_canvas(np.random.default_rng(6), 640, 480)
    body = client.post("/v1/models/digits/detect", data=upload(encode(canvas.image, "JPEG")))
    timings = body.get_json()["timings_ms"]
    assert set(timings) == {"decode", "inference", "mapping"}
    assert all(value >= 0 for value in timings.values())
    assert timings["inference"] > 0


@pytest.mark.parametrize("model", ["digits", "digits-stretch"])
@pytest.mark.parametrize("grey", [255, 128, 0])
def test_a_blank_page_has_no_detections(client: FlaskClient, model: str, grey: int) -> None:
    # Before the fix, a page without ink made the model server fail (a 502).
    blank = np.full((240, 320, 3), grey, dtype=np.uint8)
    response = client.post(f"/v1/models/{model}/detect", data=upload(encode(blank, "PNG")))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["detections"] == []
