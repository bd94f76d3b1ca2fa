"""Classification end to end: every held-out digit through both classifier models."""

from __future__ import annotations

import numpy as np
import pytest
from flask.testing import FlaskClient

from adapter.modelserver.demo_models.canvas import HELD_OUT_INDICES, digits, render_digit_image
from tests.helpers import encode, upload

MIN_ACCURACY = 0.95


@pytest.mark.parametrize("model", ["digit-classes", "digit-classes-bytes"])
def test_top1_accuracy_on_held_out_digits(client: FlaskClient, model: str) -> None:
    rng = np.random.default_rng(2024)
    labels = digits()[1]
    correct = 0
    for n, index in enumerate(HELD_OUT_INDICES):
        fmt = "PNG" if n % 2 else "JPEG"  # both formats, half each
        image = render_digit_image(rng, index, size_px=int(rng.integers(32, 129)))
        response = client.post(f"/v1/models/{model}/classify", data=upload(encode(image, fmt)))
        assert response.status_code == 200, response.get_data(as_text=True)
        top = response.get_json()["classifications"][0]
        correct += top["label"] == str(labels[index])
    accuracy = correct / len(HELD_OUT_INDICES)
    assert accuracy >= MIN_ACCURACY, f"{model}: top-1 accuracy {accuracy:.3f}"


@pytest.mark.parametrize("model", ["digit-classes", "digit-classes-bytes"])
def test_top_k_ranks_labels_and_never_reports_background(client: FlaskClient, model: str) -> None:
    image = render_digit_image(np.random.default_rng(1), HELD_OUT_INDICES[0], size_px=64)
    response = client.post(
        f"/v1/models/{model}/classify?top_k=10", data=upload(encode(image, "PNG"))
    )
    body = response.get_json()
    results = body["classifications"]
    assert len(results) == 10
    assert {r["label"] for r in results} == {str(d) for d in range(10)}
    probabilities = [r["probability"] for r in results]
    assert probabilities == sorted(probabilities, reverse=True)
    assert 0.0 <= sum(probabilities) <= 1.0 + 1e-5
    assert all(r["class_id"] == int(r["label"]) + 1 for r in results)
    assert body["image"]["width"] > 0 and body["model"]["version"] == 1


def test_default_top_k_is_five(client: FlaskClient) -> None:
    image = render_digit_image(np.random.default_rng(2), HELD_OUT_INDICES[1])
    body = client.post("/v1/models/digit-classes/classify", data=upload(encode(image, "PNG")))
    assert len(body.get_json()["classifications"]) == 5
