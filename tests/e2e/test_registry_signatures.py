"""The registry completed and checked from the live signature (GetModelMetadata), and /readyz."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.modelserver.testing import ModelServer
from tests.e2e.backends import CLASSIFIER, adapter_client, classify_seven
from tests.helpers import assert_problem


def test_fields_left_out_are_read_from_the_signature(
    tmp_path: Path, model_server: ModelServer
) -> None:
    client = adapter_client(tmp_path, CLASSIFIER, model_server.target)
    response = classify_seven(client)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["classifications"][0]["label"] == "7"
    assert client.get("/readyz").status_code == 200
    # The model list reads the live signature too, so it describes the input fully.
    described = client.get("/v1/models").get_json()["models"][0]["input"]
    assert described == {
        "encoding": "tensor", "dtype": "float32", "size": [32, 32], "resize": "stretch",
        "color": "rgb", "layout": "nhwc",
    }  # fmt: skip


def test_a_bytes_input_is_recognised_from_its_string_dtype(
    tmp_path: Path, model_server: ModelServer
) -> None:
    registry = CLASSIFIER.replace("digit_classifier}", "digit_classifier_bytes}")
    client = adapter_client(tmp_path, registry, model_server.target)
    response = classify_seven(client)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["classifications"][0]["label"] == "7"


MISMATCHES = [
    ("input: {}", "input: {dtype: uint8, size: [32, 32]}", "input.dtype",
     "the registry says uint8, but input 'images' of signature 'serving_default' is float32"),
    ("input: {}", "input: {size: [64, 64]}", "input.size", "which takes [32, 32]"),
    ("input: {}", "input: {tensor: pixels}", "input.tensor",
     "'pixels' is not an input of signature 'serving_default' (inputs: images)"),
    ("input: {}", "input: {encoding: bytes}", "input.encoding", "the registry says bytes"),
    ("input: {}", "input: {color: gray}", "input.color", "3 channels, but color gray gives 1"),
    ("input: {}", "input: {}\n    outputs: {probabilities: scores}", "outputs.probabilities",
     "'scores' is not an output of signature 'serving_default' (outputs: classes, probabilities)"),
    ("{name: digit_classifier}", "{name: digit_classifier, signature: predict}",
     "serving.signature", "the model has no signature 'predict' (it has: serving_default)"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "field", "message"), MISMATCHES)
def test_a_registry_that_disagrees_with_the_signature_fails_readiness_naming_model_and_field(
    tmp_path: Path, model_server: ModelServer, old: str, new: str, field: str, message: str
) -> None:
    client = adapter_client(tmp_path, CLASSIFIER.replace(old, new), model_server.target)
    ready = client.get("/readyz")
    body = assert_problem(ready, 503, "not-ready")
    state = body["errors"]["models"]["seven"]
    assert state["ready"] is False
    assert state["state"] == "MISCONFIGURED"
    assert len(state["problems"]) == 1
    assert state["problems"][0].startswith(f"model seven: {field}: ")
    assert message in state["problems"][0]
    assert f"model seven: {field}: " in body["detail"]
    response = classify_seven(client)
    assert_problem(response, 503, "model-not-ready")
    assert client.get("/healthz").status_code == 200  # alive all the same


def test_readyz_names_a_model_the_server_does_not_serve(
    tmp_path: Path, model_server: ModelServer
) -> None:
    registry = CLASSIFIER.replace("{name: digit_classifier}", "{name: resnet}")
    client = adapter_client(tmp_path, registry, model_server.target)
    body = assert_problem(client.get("/readyz"), 503, "not-ready")
    assert body["errors"]["models"]["seven"] == {
        "ready": False, "state": "NOT_FOUND", "version": None, "circuit": "closed",
    }  # fmt: skip
    assert_problem(classify_seven(client), 503, "model-not-served")


def test_a_version_label_is_ready_only_when_tf_serving_resolves_it(
    tmp_path: Path, model_server: ModelServer
) -> None:
    registry = CLASSIFIER.replace(
        "{name: digit_classifier}", "{name: digit_classifier, version_label: stable}"
    )
    client = adapter_client(tmp_path, registry, model_server.target)
    body = assert_problem(client.get("/readyz"), 503, "not-ready")
    assert body["errors"]["models"]["seven"]["ready"] is False


def test_a_request_may_pick_only_the_versions_the_registry_allows(
    tmp_path: Path, model_server: ModelServer
) -> None:
    registry = CLASSIFIER.replace(
        "{name: digit_classifier}", "{name: digit_classifier, allow_versions: [1]}"
    )
    client = adapter_client(tmp_path, registry, model_server.target)
    assert classify_seven(client, "?version=1").get_json()["model"]["version"] == 1
    body = assert_problem(classify_seven(client, "?version=3"), 422, "validation-failed")
    assert body["errors"] == {"version": ["Must be one of: 1."]}
    (tmp_path / "fixed").mkdir()
    fixed = adapter_client(tmp_path / "fixed", CLASSIFIER, model_server.target)
    body = assert_problem(classify_seven(fixed, "?version=1"), 422, "validation-failed")
    assert body["errors"] == {"version": ["This model does not allow choosing a version."]}


@pytest.mark.parametrize("value", ["abc", "0", "-5", "1.5", "600001"])
def test_a_bad_timeout_header_is_a_422_naming_it(
    tmp_path: Path, model_server: ModelServer, value: str
) -> None:
    client = adapter_client(tmp_path, CLASSIFIER, model_server.target)
    response = classify_seven(client, headers={"X-Request-Timeout-Ms": value})
    body = assert_problem(response, 422, "validation-failed")
    assert list(body["errors"]) == ["X-Request-Timeout-Ms"]
