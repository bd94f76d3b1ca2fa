"""The README's example is what the service really answers for the shipped sample."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.helpers import box_tuple, unmatched_digits, upload

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "adapter" / "demo" / "samples"


def _readme_answers() -> list[dict]:  # type: ignore[type-arg]
    text = (ROOT / "README.md").read_text()
    return [json.loads(block) for block in re.findall(r"```json\n(\{\n.*?\n\})\n```", text, re.S)]


def test_the_sample_digits_are_all_found(client: FlaskClient) -> None:
    truth = json.loads((SAMPLES / "digits.json").read_text())["digits"]
    response = client.post(
        "/v1/models/digits/detect", data=upload((SAMPLES / "digits.jpg").read_bytes())
    )
    detections = response.get_json()["detections"]
    boxes = [box_tuple(d["box"]) for d in truth]
    assert not unmatched_digits(detections, boxes, [int(d["label"]) for d in truth])
    assert len(detections) == len(truth)


@pytest.mark.parametrize(
    ("path", "sample", "key"),
    [
        ("/v1/models/digits/detect", "digits.jpg", "detections"),
        ("/v1/models/digit-classes/classify?top_k=3", "seven.png", "classifications"),
    ],
)
def test_readme_shows_the_real_answer(
    client: FlaskClient, path: str, sample: str, key: str
) -> None:
    [shown] = [answer for answer in _readme_answers() if key in answer]
    live = client.post(path, data=upload((SAMPLES / sample).read_bytes())).get_json()
    assert live["model"] == shown["model"] and live["image"] == shown["image"]
    assert [d["label"] for d in live[key]] == [d["label"] for d in shown[key]]
    for got, documented in zip(live[key], shown[key], strict=True):
        if key == "detections":
            assert box_tuple(got["box"]) == pytest.approx(box_tuple(documented["box"]), abs=1.0)
            assert got["score"] == pytest.approx(documented["score"], abs=1e-3)
        else:
            assert got["probability"] == pytest.approx(documented["probability"], abs=1e-3)
