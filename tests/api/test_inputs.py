"""Every input style gives the same answer; options from the query or the JSON body."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.helpers import assert_problem, upload

SAMPLES = Path(__file__).resolve().parents[2] / "adapter" / "demo" / "samples"
DIGITS = (SAMPLES / "digits.jpg").read_bytes()
SEVEN = (SAMPLES / "seven.png").read_bytes()
DETECT = "/v1/models/digits/detect"
CLASSIFY = "/v1/models/digit-classes/classify"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _answer(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    body: dict[str, Any] = response.get_json()
    body.pop("timings_ms")
    return body


@pytest.fixture(scope="module")
def multipart_answer(client_module: FlaskClient) -> dict[str, Any]:
    return _answer(client_module.post(DETECT, data=upload(DIGITS)))


@pytest.fixture(scope="module")
def client_module(app: Any) -> FlaskClient:
    client: FlaskClient = app.test_client()
    return client


def test_multipart_finds_the_sample_digits(multipart_answer: dict[str, Any]) -> None:
    assert multipart_answer["image"] == {"width": 1280, "height": 720}
    assert sorted(d["label"] for d in multipart_answer["detections"]) == sorted("56728811")


@pytest.mark.parametrize(
    "b64",
    [
        _b64(DIGITS),
        _b64(DIGITS).rstrip("="),  # padding is optional
        "data:image/jpeg;base64," + _b64(DIGITS),
        base64.encodebytes(DIGITS).decode(),  # line-wrapped, as `base64` prints it
    ],
    ids=["plain", "unpadded", "data-url", "wrapped"],
)
def test_json_base64_gives_the_multipart_answer(
    client: FlaskClient, multipart_answer: dict[str, Any], b64: str
) -> None:
    response = client.post(DETECT, json={"image": {"b64": b64}})
    assert _answer(response) == multipart_answer


@pytest.mark.parametrize(
    "content_type", ["image/jpeg", "image/png", "image/webp", "image/gif", "image/bmp"]
)
def test_raw_body_gives_the_multipart_answer(
    client: FlaskClient, multipart_answer: dict[str, Any], content_type: str
) -> None:
    # The format is sniffed from the bytes, whatever image/* type the client declared.
    response = client.post(DETECT, data=DIGITS, content_type=content_type)
    assert _answer(response) == multipart_answer


def test_options_as_json_fields_or_query_agree(client: FlaskClient) -> None:
    by_query = client.post(f"{DETECT}?min_score=0.9&max_results=2&labels=8,1", data=upload(DIGITS))
    by_body = client.post(
        DETECT,
        json={"image": {"b64": _b64(DIGITS)}, "min_score": 0.9, "max_results": 2,
              "labels": ["8", "1"]},
    )  # fmt: skip
    assert _answer(by_query) == _answer(by_body)
    detections = by_query.get_json()["detections"]
    assert len(detections) == 2
    assert {d["label"] for d in detections} <= {"8", "1"}
    assert all(d["score"] >= 0.9 for d in detections)


def test_labels_filter_detections(client: FlaskClient) -> None:
    everything = _answer(client.post(DETECT, data=upload(DIGITS)))["detections"]
    eights = _answer(client.post(f"{DETECT}?labels=8", data=upload(DIGITS)))["detections"]
    assert eights == [d for d in everything if d["label"] == "8"]
    assert len(eights) == 2


def test_labels_restrict_classifications(client: FlaskClient) -> None:
    body = _answer(client.post(f"{CLASSIFY}?labels=1,3&top_k=5", data=upload(SEVEN)))
    assert [c["label"] for c in body["classifications"]] in (["1", "3"], ["3", "1"])
    best = _answer(client.post(CLASSIFY, data=upload(SEVEN)))["classifications"]
    assert best[0]["label"] == "7"


def test_classify_takes_json(client: FlaskClient) -> None:
    response = client.post(CLASSIFY, json={"image": {"b64": _b64(SEVEN)}, "top_k": 2})
    classes = _answer(response)["classifications"]
    assert [c["label"] for c in classes][:1] == ["7"]
    assert len(classes) == 2


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (DETECT, {"image": {"b64": "***"}}, "image"),
        (DETECT, {"image": {"b64": 42}}, "image"),
        (DETECT, {"image": {"b64": "abcde"}}, "image"),  # 5 chars can't be base64
        (DETECT, {"image": {"url": "http://example.com/x.jpg"}}, "image"),
        (DETECT, {"image": {"b64": "AAAA"}, "min_scor": 0.2}, "min_scor"),
        (DETECT, {"image": {"b64": "AAAA"}, "top_k": 3}, "top_k"),  # a classify option
        (DETECT, {"image": {"b64": "AAAA"}, "min_score": 2}, "min_score"),
        (DETECT, {"image": {"b64": "AAAA"}, "labels": ["8"]}, None),  # valid: the image fails
        (DETECT, {"image": {"b64": "AAAA"}, "labels": "8,1"}, "labels"),  # JSON has arrays
        (DETECT, {"image": {"b64": "AAAA"}, "min_score": "0.5"}, "min_score"),  # and numbers
        (DETECT, {"image": {"b64": "AAAA"}, "max_results": 2.5}, "max_results"),
        (DETECT, {"image": {"b64": "AAAA"}, "max_results": True}, "max_results"),
        (DETECT, {"image": {"b64": "AAAA"}, "labels": [8]}, "labels"),
        (DETECT, {"image": {"b64": "AAAA"}, "labels": []}, "labels"),
        (DETECT, {"image": {"b64": "AAAA"}, "images": [{"b64": "AAAA"}]}, "image"),
        (DETECT, {"min_score": 0.5}, "image"),
        (DETECT, {"images": []}, "images"),
        (CLASSIFY, {"image": {"b64": "AAAA"}, "top_k": 0}, "top_k"),
        (CLASSIFY, {"image": {"b64": "AAAA"}, "max_results": 3}, "max_results"),
    ],
)
def test_bad_json_fields_are_named(
    client: FlaskClient, path: str, body: dict[str, Any], field: str | None
) -> None:
    response = client.post(path, json=body)
    if field is None:  # valid options; the 4-byte "image" is what fails
        assert_problem(response, 415, "unsupported-image")
        return
    problem = assert_problem(response, 422, "validation-failed")
    assert field in problem["errors"], problem


def test_an_option_in_query_and_body_is_refused(client: FlaskClient) -> None:
    response = client.post(f"{DETECT}?min_score=0.2", json={"image": {"b64": "AAAA"},
                                                            "min_score": 0.3})  # fmt: skip
    assert "min_score" in assert_problem(response, 422, "validation-failed")["errors"]


def test_unknown_labels_are_named(client: FlaskClient) -> None:
    response = client.post(f"{DETECT}?labels=7,cat", data=upload(DIGITS))
    problem = assert_problem(response, 422, "validation-failed")
    assert "cat" in problem["errors"]["labels"][0]
    assert "'7'" not in problem["errors"]["labels"][0]


@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"[1, 2]", b'"image"'], ids=["broken", "empty", "array", "string"]
)
def test_malformed_json_is_a_400(client: FlaskClient, body: bytes) -> None:
    response = client.post(DETECT, data=body, content_type="application/json")
    assert_problem(response, 400, "bad-request")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/octet-stream", "image/tiff", "image/svg+xml", None]
)
def test_other_media_types_are_a_415(client: FlaskClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post(DETECT, data=DIGITS, headers=headers)
    problem = assert_problem(response, 415, "unsupported-media-type")
    assert "multipart/form-data" in problem["detail"]


def test_an_empty_raw_body_is_an_invalid_image(client: FlaskClient) -> None:
    assert_problem(client.post(DETECT, data=b"", content_type="image/png"), 400, "invalid-image")


def test_form_fields_are_not_options(client: FlaskClient) -> None:
    form = {**upload(DIGITS), "min_score": "0.3"}
    problem = assert_problem(client.post(DETECT, data=form), 422, "validation-failed")
    assert "min_score" in problem["errors"]
    assert "query string" in problem["detail"]


def test_too_many_images_are_refused(client: FlaskClient) -> None:
    form = {"image": [(io.BytesIO(SEVEN), f"{i}.png") for i in range(17)]}
    problem = assert_problem(client.post(CLASSIFY, data=form), 422, "validation-failed")
    assert "16" in problem["errors"]["image"][0]
    body = {"images": [{"b64": _b64(SEVEN)}] * 17}
    problem = assert_problem(client.post(CLASSIFY, json=body), 422, "validation-failed")
    assert "images" in problem["errors"]


def test_server_timing_names_each_step(client: FlaskClient) -> None:
    response = client.post(DETECT, data=upload(DIGITS))
    body = response.get_json()
    metrics = dict(
        part.strip().split(";dur=") for part in response.headers["Server-Timing"].split(",")
    )
    assert list(metrics) == ["decode", "inference", "mapping"]
    for step, value in metrics.items():
        assert float(value) == pytest.approx(body["timings_ms"][step], abs=0.001)
