"""The model families users bring, end to end: HTTP -> the real model server over gRPC.

The demo models built in each exporter's signature (Detection Zoo, Mask
R-CNN, YOLO, Keras, multi-label) answer held-out digits (samples 1500-1796)
drawn on canvases from 200x900 to 3000x2000, sent as JPEG and PNG.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from PIL import Image

from adapter.modelserver.demo_models.canvas import (
    HELD_OUT_INDICES,
    digits,
    make_canvas,
    render_digit_image,
)
from adapter.modelserver.testing import ModelServer
from tests.e2e.backends import adapter_client
from tests.helpers import box_tuple, encode, iou, unmatched_digits, upload

SIZES = [(200, 900), (900, 200), (1280, 720), (3000, 2000)]
CANVASES_PER_FORMAT = 3
MIN_RECALL = 0.9  # share of drawn digits found with the right label and IoU >= 0.5
MIN_PRECISION = 0.9  # share of returned detections that are such a match
PRIMES = {2, 3, 5, 7}


def detect(client: FlaskClient, model: str, data: bytes, query: str = "") -> dict[str, Any]:
    response = client.post(f"/v1/models/{model}/detect{query}", data=upload(data))
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    return body


@pytest.mark.parametrize("model", ["digits-zoo", "digits-yolo", "digits-masks"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_held_out_digits_are_found_in_original_pixels(
    client: FlaskClient, model: str, size: tuple[int, int]
) -> None:
    width, height = size
    rng = np.random.default_rng(width * 11 + height)
    drawn = found = returned = 0
    for fmt in ("JPEG", "PNG"):
        for _ in range(CANVASES_PER_FORMAT):
            canvas = make_canvas(rng, width, height)
            data = encode(canvas.image, fmt)
            body = detect(client, model, data)
            assert body["image"] == {"width": width, "height": height}
            for det in body["detections"]:
                x0, y0, x1, y1 = box_tuple(det["box"])
                assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
                assert "mask" not in det  # only with ?masks=true
            # Whatever the label, every drawn digit has a box with IoU >= 0.5.
            every = detect(client, model, data, "?min_score=0")["detections"]
            for square in canvas.boxes:
                best = max((iou(box_tuple(d["box"]), square) for d in every), default=0.0)
                assert best >= 0.5, (square, every)
            missed = unmatched_digits(body["detections"], canvas.boxes, canvas.labels)
            drawn += len(canvas.labels)
            found += len(canvas.labels) - len(missed)
            returned += len(body["detections"])
    assert found / drawn >= MIN_RECALL, f"found {found} of {drawn} digits"
    # The YOLO head answers five overlapping candidates per digit: NMS must leave one.
    assert found / max(returned, 1) >= MIN_PRECISION, f"{found} of {returned} detections right"


@pytest.mark.parametrize("model", ["digits-zoo", "digits-yolo"])
def test_a_batch_through_a_fixed_batch_of_one_answers_each_image_in_order(
    client: FlaskClient, model: str
) -> None:
    rng = np.random.default_rng(3)
    canvases = [make_canvas(rng, w, h) for w, h in [(1280, 720), (200, 900), (3000, 2000)]]
    files = [encode(c.image, "JPEG") for c in canvases]
    files.insert(1, b"not an image")
    form = {"image": [(io.BytesIO(data), f"{i}.img") for i, data in enumerate(files)]}
    response = client.post(f"/v1/models/{model}/detect", data=form)
    assert response.status_code == 200, response.get_data(as_text=True)
    results = response.get_json()["results"]
    assert len(results) == 4
    assert results[1]["error"]["status"] == 415
    answered = [results[0], results[2], results[3]]
    for canvas, result in zip(canvases, answered, strict=True):
        height, width = canvas.image.shape[:2]
        assert result["image"] == {"width": width, "height": height}
        missed = unmatched_digits(result["detections"], canvas.boxes, canvas.labels)
        assert len(missed) <= len(canvas.labels) // 4, (missed, canvas.labels)


def test_a_keras_classifier_with_softmax_names_held_out_digits(client: FlaskClient) -> None:
    rng = np.random.default_rng(8)
    targets = digits()[1]
    indices = list(HELD_OUT_INDICES)
    right = 0
    for start in range(0, len(indices), 16):  # 16: the most images a request may send
        chunk = indices[start : start + 16]
        images = [
            encode(render_digit_image(rng, i, int(rng.integers(24, 128))), "PNG") for i in chunk
        ]
        response = client.post(
            "/v1/models/digit-classes-keras/classify?top_k=10",
            data={
                "image": [
                    (io.BytesIO(data), f"{i}.png") for i, data in zip(chunk, images, strict=True)
                ]
            },
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        results = response.get_json()["results"]
        for index, result in zip(chunk, results, strict=True):
            classes = result["classifications"]
            assert len(classes) == 10
            probabilities = [c["probability"] for c in classes]
            assert all(0 <= p <= 1 for p in probabilities)
            assert sum(probabilities) == pytest.approx(1, abs=1e-4)
            right += classes[0]["label"] == str(targets[index])
    assert right / len(indices) >= 0.95, f"{right} of {len(indices)} right"


def test_the_multi_label_model_returns_every_class_above_min_score(client: FlaskClient) -> None:
    rng = np.random.default_rng(9)
    targets = digits()[1]
    indices = list(HELD_OUT_INDICES)[:60]
    exact = 0
    for index in indices:
        data = encode(render_digit_image(rng, index, 64), "PNG")
        path = "/v1/models/digit-attributes/classify"
        answer = client.post(path, data=upload(data)).get_json()["classifications"]
        every = client.post(f"{path}?min_score=0", data=upload(data)).get_json()["classifications"]
        # Every class at or above 0.5 (the default), sorted, and none below.
        assert len(every) == 13
        assert answer == [c for c in every if c["probability"] >= 0.5]
        strict = client.post(f"{path}?min_score=0.9", data=upload(data)).get_json()
        assert strict["classifications"] == [c for c in every if c["probability"] >= 0.9]
        digit = int(targets[index])
        expected = {str(digit), "even" if digit % 2 == 0 else "odd"} | (
            {"prime"} if digit in PRIMES else set()
        )
        exact += {c["label"] for c in answer} == expected
    assert exact / len(indices) >= 0.9, f"{exact} of {len(indices)} exactly right"


def rle_decode(mask: dict[str, Any]) -> np.ndarray:
    """COCO uncompressed RLE -> bool [height, width] (runs column-major, zeros first)."""
    height, width = mask["size"]
    flat = np.zeros(height * width, bool)
    position = 0
    for run, count in enumerate(mask["counts"]):
        flat[position : position + count] = run % 2 == 1
        position += count
    assert position == height * width, "the runs cover the whole image"
    return flat.reshape(width, height).T


def ink_of(image: np.ndarray, square: tuple[float, ...]) -> np.ndarray:
    """Pixels of the drawn square clearly darker than its paper: the digit's ink."""
    grey = image.mean(axis=2)
    x0, y0, x1, y1 = (int(v) for v in square)
    region = grey[y0:y1, x0:x1]
    paper = float(np.percentile(region, 90))
    ink = np.zeros(grey.shape, bool)
    ink[y0:y1, x0:x1] = region < paper - 0.3 * (paper - region.min())
    return ink


@pytest.mark.parametrize("size", [(1280, 720), (200, 900), (3000, 2000)])
def test_masks_cover_each_digits_ink_in_original_pixels(
    client: FlaskClient, size: tuple[int, int]
) -> None:
    width, height = size
    rng = np.random.default_rng(width + 3 * height)
    overlaps = []
    for _ in range(3):
        canvas = make_canvas(rng, width, height)
        data = encode(canvas.image, "PNG")
        body = detect(client, "digits-masks", data, "?masks=true")
        for det in body["detections"]:
            assert det["mask"]["size"] == [height, width]
        for square, label in zip(canvas.boxes, canvas.labels, strict=True):
            matches = [
                d for d in body["detections"]
                if d["label"] == str(label) and iou(box_tuple(d["box"]), square) >= 0.5
            ]  # fmt: skip
            if not matches:
                continue
            mask = rle_decode(matches[0]["mask"])
            ink = ink_of(canvas.image, square)
            overlaps.append((mask & ink).sum() / max((mask | ink).sum(), 1))
    assert overlaps, "no digit was found"
    assert min(overlaps) >= 0.5, sorted(overlaps)[:5]


def test_an_annotated_image_draws_the_masks(client: FlaskClient) -> None:
    canvas = make_canvas(np.random.default_rng(4), 640, 480)
    data = encode(canvas.image, "PNG")

    def drawn(query: str) -> np.ndarray:
        response = client.post(
            f"/v1/models/digits-masks/detect{query}",
            data=upload(data),
            headers={"Accept": "image/png"},
        )
        assert response.status_code == 200
        return np.asarray(Image.open(io.BytesIO(response.data)).convert("RGB")).astype(int)

    plain, masked = drawn(""), drawn("?masks=true")
    mask = rle_decode(detect(client, "digits-masks", data, "?masks=true")["detections"][0]["mask"])
    changed = np.abs(masked - plain).sum(axis=2) > 0
    assert changed[mask].mean() > 0.5  # the mask's pixels are tinted
    assert not changed[~np.pad(mask, 8, constant_values=False)[8:-8, 8:-8]].all()


# --- zero configuration: task and serving.name only ------------------------------------------

ZERO_CONFIG = """
models:
  zoo: {task: detection, serving: {name: digit_detector_zoo}}
  batched: {task: detection, serving: {name: digit_detector}}
  yolo: {task: detection, serving: {name: digit_yolo}}
  keras: {task: classification, serving: {name: digit_classifier_keras}}
  classifier: {task: classification, serving: {name: digit_classifier}}
  zoo-as-classifier: {task: classification, serving: {name: digit_detector_zoo}}
  keras-as-detector: {task: detection, serving: {name: digit_classifier_keras}}
"""


@pytest.fixture(scope="module")
def zero_config(tmp_path_factory: pytest.TempPathFactory, model_server: ModelServer) -> FlaskClient:
    tmp: Path = tmp_path_factory.mktemp("zero-config")
    return adapter_client(tmp, ZERO_CONFIG, model_server.target)


def test_readyz_names_the_missing_field_and_the_fix(zero_config: FlaskClient) -> None:
    response = zero_config.get("/readyz")
    assert response.status_code == 503
    models = response.get_json()["errors"]["models"]
    ready = sorted(name for name, state in models.items() if state["ready"])
    assert ready == ["batched", "classifier", "keras", "yolo", "zoo"]
    (problem,) = models["zoo-as-classifier"]["problems"]
    assert problem.startswith("model zoo-as-classifier: outputs.probabilities: ")
    assert "name one" in problem and "detection_scores" in problem
    problems = models["keras-as-detector"]["problems"]
    assert any(p.startswith("model keras-as-detector: outputs.boxes: ") for p in problems)
    assert all("format: yolo" in p for p in problems if ": outputs." in p)


@pytest.mark.parametrize("model", ["zoo", "batched", "yolo"])
def test_a_detector_with_zero_config_finds_the_digits(zero_config: FlaskClient, model: str) -> None:
    rng = np.random.default_rng(21)
    drawn = found = 0
    for width, height in SIZES:
        canvas = make_canvas(rng, width, height)
        body = detect(zero_config, model, encode(canvas.image, "JPEG"))
        # No labels given: class ids, 1-based for the TF OD API ones, 0-based for YOLO.
        offset = 0 if model == "yolo" else 1
        labels = [str(label + offset) for label in canvas.labels]
        drawn += len(labels)
        found += len(labels) - len(unmatched_digits(body["detections"], canvas.boxes, labels))
    assert found / drawn >= MIN_RECALL - 0.1, f"found {found} of {drawn} digits"


def test_a_keras_classifier_with_zero_config_is_flagged_not_negative(
    zero_config: FlaskClient,
) -> None:
    data = encode(render_digit_image(np.random.default_rng(2), 1503, 64), "PNG")
    response = zero_config.post("/v1/models/keras/classify", data=upload(data))
    assert response.status_code == 200
    assert all(0 <= c["probability"] <= 1 for c in response.get_json()["classifications"])
    described = zero_config.get("/v1/models/keras").get_json()
    (hint,) = described["hints"]
    assert "activation: softmax" in hint
    assert described["output"] == {
        "format": "classification",
        "activation": "none",
        "multi_label": False,
    }
