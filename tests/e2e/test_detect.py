"""Detection end to end: held-out digits on canvases -> HTTP -> gRPC -> labelled pixel boxes."""

from __future__ import annotations

import numpy as np
import pytest
from flask.testing import FlaskClient

from adapter.modelserver.demo_models.canvas import make_canvas
from tests.helpers import box_tuple, encode, unmatched_digits, upload

SIZES = [(200, 900), (900, 200), (1280, 720), (3000, 2000)]
SEEDS = [11, 12]


@pytest.mark.parametrize("model", ["digits", "digits-stretch"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
@pytest.mark.parametrize("seed", SEEDS)
def test_every_drawn_digit_is_found_in_original_pixels(
    client: FlaskClient, model: str, fmt: str, size: tuple[int, int], seed: int
) -> None:
    width, height = size
    canvas = make_canvas(np.random.default_rng(seed * 1000 + width), width, height)
    response = client.post(
        f"/v1/models/{model}/detect", data=upload(encode(canvas.image, fmt)), buffered=True
    )

    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["image"] == {"width": width, "height": height}
    assert body["model"]["name"] == model
    detections = body["detections"]
    missed = unmatched_digits(detections, canvas.boxes, canvas.labels)
    assert not missed, f"missed digits {[canvas.labels[i] for i in missed]} in {detections}"
    assert len(detections) == len(canvas.labels), "a detection matches no drawn digit"
    scores = [d["score"] for d in detections]
    assert scores == sorted(scores, reverse=True)
    for det in detections:
        x0, y0, x1, y1 = box_tuple(det["box"])
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        norm = box_tuple(det["box_normalized"])
        assert norm == pytest.approx((x0 / width, y0 / height, x1 / width, y1 / height), abs=1e-5)
        assert det["class_id"] == int(det["label"]) + 1  # TF OD API classes are 1-based


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
