"""The REST API (--rest_api_port): TF Serving's JSON, status codes and messages, same as gRPC."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    prediction_service_pb2_grpc,
)

from adapter.modelserver.testing import REPO_ROOT, ModelServer, install_version, start_model_server
from tests.modelserver.predict_requests import request


@pytest.fixture(scope="module")
def rest_server(shared_config: Path) -> Iterator[ModelServer]:
    """A server with the shared config (half_plus_two, versioned, pinned) and REST on."""
    with start_model_server(["--model_config_file", str(shared_config)], 90, rest=True) as server:
        yield server


@pytest.fixture(scope="module")
def http(rest_server: ModelServer) -> Iterator[Callable[..., requests.Response]]:
    """``http(method, path, body=None)``: one keep-alive session to the REST API."""
    with requests.Session() as session:

        def call(method: str, path: str, body: Any = None) -> requests.Response:
            data = body if isinstance(body, bytes) or body is None else None
            json_body = None if isinstance(body, bytes) or body is None else body
            return session.request(
                method, rest_server.rest_url + path, data=data, json=json_body, timeout=30
            )

        yield call


@pytest.fixture(scope="module")
def grpc_stub(
    rest_server: ModelServer,
) -> Iterator[prediction_service_pb2_grpc.PredictionServiceStub]:
    """TF Serving's PredictionService stub on the same server's gRPC port."""
    with grpc.insecure_channel(rest_server.target) as channel:
        yield prediction_service_pb2_grpc.PredictionServiceStub(channel)


def test_ready_lines_and_ports(rest_server: ModelServer) -> None:
    assert rest_server.stdout_lines == [
        f"model server listening on 127.0.0.1:{rest_server.port}",
        f"model server REST API listening on 127.0.0.1:{rest_server.rest_port}",
    ]
    assert rest_server.rest_url == f"http://127.0.0.1:{rest_server.rest_port}"


def test_model_status_is_tf_servings_json(http: Callable[..., requests.Response]) -> None:
    response = http("GET", "/v1/models/half_plus_two")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "model_version_status": [
            {
                "version": "1",
                "state": "AVAILABLE",
                "status": {"error_code": "OK", "error_message": ""},
            }
        ]
    }


def test_model_status_by_version_and_label(http: Callable[..., requests.Response]) -> None:
    def versions(path: str) -> list[str]:
        response = http("GET", path)
        assert response.status_code == 200, response.text
        return [entry["version"] for entry in response.json()["model_version_status"]]

    assert versions("/v1/models/versioned/versions/2") == ["2"]
    assert versions("/v1/models/versioned/labels/stable") == ["2", "1"]  # a label lists all
    assert versions("/V1/MODELS/versioned") == ["2", "1"]  # paths are case-insensitive
    missing = http("GET", "/v1/models/versioned/versions/9")
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "Could not find version 9 of model versioned"},
    )


def test_metadata_is_the_grpc_metadata_as_json(
    http: Callable[..., requests.Response],
    grpc_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    response = http("GET", "/v1/models/versioned/labels/stable/metadata")
    assert response.status_code == 200
    body = response.json()
    assert body["model_spec"] == {"name": "versioned", "signature_name": "", "version": "1"}
    x = body["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["x"]
    assert x["dtype"] == "DT_FLOAT"
    assert x["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = "versioned"
    req.model_spec.version_label = "stable"
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    grpc_stub.GetModelMetadata(req, timeout=10).metadata["signature_def"].Unpack(signature_map)
    assert body["metadata"]["signature_def"] == json_format.MessageToDict(
        signature_map, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )


P = "/v1/models/half_plus_two:predict"
MATRIX = {"signature_name": "matrix"}
ROWS = {"predictions": [{"x2": 2.0, "y": 2.5}, {"x2": 4.0, "y": 3.0}]}
COLUMNS = {"outputs": {"x2": [2.0, 4.0], "y": [2.5, 3.0]}}
CDE = {"b64": base64.b64encode(b"cde").decode()}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"instances": [1.0, 2.0]}, ROWS),
        ({"instances": [{"x": 1.0}, {"x": 2}]}, ROWS),
        ({"inputs": {"x": [1.0, 2.0]}}, COLUMNS),
        ({"inputs": [1.0, 2.0]}, COLUMNS),
        ({**MATRIX, "instances": [[1, 2], [3, 4]]}, {"predictions": [[5.0], [11.0]]}),
        ({**MATRIX, "inputs": [[1, 2], [3, 4]]}, {"outputs": [[5.0], [11.0]]}),
        (
            {"signature_name": "strings", "instances": ["ab", CDE]},
            {"predictions": [{"length": 2, "upper": "AB"}, {"length": 3, "upper": "CDE"}]},
        ),
    ],
)  # fmt: skip
def test_predict_row_and_columnar(
    http: Callable[..., requests.Response], body: dict[str, Any], expected: dict[str, Any]
) -> None:
    response = http("POST", "/v1/models/half_plus_two:predict", body)
    assert response.status_code == 200, response.text
    assert response.json() == expected


@pytest.mark.parametrize(
    ("path", "y"),
    [
        ("/v1/models/versioned:predict", 4.0),  # latest: version 2, b=3
        ("/v1/models/versioned/versions/1:predict", 3.0),
        ("/v1/models/versioned/labels/stable:predict", 3.0),
        ("/v1/models/versioned/labels/canary:predict", 4.0),
        ("/v1/models/pinned:predict", 3.0),
    ],
)
def test_versions_and_labels(http: Callable[..., requests.Response], path: str, y: float) -> None:
    response = http("POST", path, {"inputs": {"x": [2.0]}})
    assert response.json() == {"outputs": {"x2": [4.0], "y": [y]}}


ERRORS = [  # method, path, body, HTTP status, TF Serving's message
    ("POST", "/v1/models/nope:predict", {"inputs": [1.0]}, 404,
     "Servable not found for request: Latest(nope)"),
    ("POST", "/v1/models/versioned/versions/9:predict", {"inputs": [1.0]}, 404,
     "Servable not found for request: Specific(versioned, 9)"),
    ("POST", "/v1/models/versioned/labels/nope:predict", {"inputs": [1.0]}, 400,
     "Unrecognized servable version label: nope"),
    ("POST", P, {"signature_name": "nope", "inputs": [1.0]}, 400,
     'Serving signature name: "nope" not found in signature def'),
    ("POST", P, b"", 400, "JSON Parse error: The document is empty"),
    ("POST", P, [1], 400, "JSON Value: [\n    1\n] Is not object"),
    ("POST", P, {}, 400, "Missing 'inputs' or 'instances' key"),
    ("POST", P, {"inputs": {"x": ["a"]}}, 400,
     'JSON Value: "a" Type: String is not of expected type: float'),
    ("POST", P, {"inputs": {"x": [True]}}, 400,
     "JSON Value: true Type: True is not of expected type: float"),
    ("POST", P, {"inputs": {"z": [1.0]}}, 400,
     "Missing named input: x in 'inputs' object."),
    ("POST", P, {"inputs": [16777216]}, 400,
     "Cannot convert JSON value: 16777216 to float without loss of precision."),
    ("POST", P, {**MATRIX, "inputs": [[1, 2], [3]]},
     400, "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
    ("POST", P, {**MATRIX, "inputs": [[1, 2], 3]},
     400, "JSON Value: 3 found at incorrect level: 2 in the JSON DOM. Expected at level: 2"),
    ("POST", P, {"instances": [{"x": 1.0}, {"z": 2.0}]}, 400,
     "Failed to process element: 1 key: z of 'instances' list. Error: "
     "INVALID_ARGUMENT: JSON object: does not have named input: z"),
    ("POST", P, {"instances": [[1.0], [1.0, 2.0]]}, 400,
     "Failed to process element: 1 of 'instances' list. Error: "
     "INVALID_ARGUMENT: Expecting tensor size: 1 but got: 2"),
    ("POST", P, {"instances": [], "inputs": []}, 400,
     "JSON Value: {\n    \"instances\": [],\n    \"inputs\": []\n} Not formatted correctly "
     "expecting only one of 'inputs' or 'instances' keys to exist "),
    ("POST", "/v1/models/half_plus_two:explode", {}, 400,
     "Malformed request: POST /v1/models/half_plus_two:explode"),
    ("POST", "/v1/models/half_plus_two:classify", {}, 501,
     "Classify is not implemented by this model server"),
    ("GET", "/v1/foo", None, 400, "Malformed request: GET /v1/foo"),
    ("GET", "/v1/models", None, 400, "Missing model name in request."),
    ("DELETE", "/v1/models/half_plus_two", None, 400,
     "Malformed request: DELETE /v1/models/half_plus_two"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status", "message"), ERRORS)
def test_errors_are_tf_servings(
    http: Callable[..., requests.Response],
    method: str,
    path: str,
    body: Any,
    status: int,
    message: str,
) -> None:
    response = http(method, path, body)
    assert (response.status_code, response.json()) == (status, {"error": message})


def test_paths_outside_v1_are_404(http: Callable[..., requests.Response]) -> None:
    response = http("GET", "/metrics")
    assert (response.status_code, response.content) == (404, b"")


def test_rest_and_grpc_agree(
    http: Callable[..., requests.Response],
    grpc_stub: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    m = np.array([[0.25, -3.5], [1e-3, 7.0]], np.float32)
    answer = grpc_stub.Predict(request(signature="matrix", m=m), timeout=10)
    expected = tf.make_ndarray(answer.outputs["product"]).ravel()
    response = http("POST", P, {**MATRIX, "inputs": m.tolist()})
    assert np.array(response.json()["outputs"], np.float32).ravel().tolist() == expected.tolist()
    # A TensorFlow runtime error reads the same on both APIs.
    bad = np.array([[1.0, 2.0, 3.0]], np.float32)
    with pytest.raises(grpc.RpcError) as info:
        grpc_stub.Predict(request(signature="matrix", m=bad), timeout=10)
    response = http("POST", P, {**MATRIX, "inputs": bad.tolist()})
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (response.status_code, response.json()) == (400, {"error": info.value.details()})


def test_concurrent_keep_alive_requests(rest_server: ModelServer) -> None:
    def predicts(worker: int) -> list[float]:
        with requests.Session() as session:
            return [
                session.post(
                    f"{rest_server.rest_url}/v1/models/half_plus_two:predict",
                    json={"inputs": {"x": [float(worker * 10 + i)]}},
                    timeout=30,
                ).json()["outputs"]["y"][0]
                for i in range(10)
            ]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(predicts, range(8)))
    assert results == [[0.5 * (w * 10 + i) + 2.0 for i in range(10)] for w in range(8)]


def test_timeout_and_sigterm(
    start_model_server: Callable[..., ModelServer], exports: dict[str, Path], tmp_path: Path
) -> None:
    install_version(exports["plus2"], tmp_path / "m", 1)
    args = ["--model_base_path", str(tmp_path / "m"), "--rest_api_timeout_in_ms", "1"]
    server = start_model_server(args, rest=True)
    url = f"{server.rest_url}/v1/models/default"
    assert requests.get(url, timeout=10).status_code == 200  # status has no timeout
    slow = requests.post(f"{url}:predict", json={"inputs": [1.0] * 200_000}, timeout=30)
    assert (slow.status_code, slow.json()) == (504, {"error": "Timed out waiting for notification"})
    assert server.stop() == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    assert "Received SIGTERM" in server.logs()


def test_rest_flags_are_checked() -> None:
    def usage_error(*args: str) -> str:
        command = [sys.executable, "-m", "adapter.modelserver.server", "--models_dir", "/x", *args]
        result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        return result.stderr

    assert "--rest_api_port must be between" in usage_error("--rest_api_port", "70000")
    assert "different from --port" in usage_error("--port", "8500", "--rest_api_port", "8500")
    assert "at least 1" in usage_error("--rest_api_num_threads", "0")


def test_taken_rest_port_fails_to_start(exports: dict[str, Path], tmp_path: Path) -> None:
    install_version(exports["plus2"], tmp_path / "m", 1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="Failed to start HTTP Server"):
            start_model_server(
                ["--model_base_path", str(tmp_path / "m"), "--rest_api_port", str(port)], 90
            )
