"""The REST transport against a real local model server: same answers as gRPC, same codes."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from PIL import Image

from adapter.modelserver.testing import (
    ModelServer,
    free_port,
    make_test_certificates,
    start_model_server,
)
from adapter.serving.channel import TlsFiles
from adapter.serving.grpc_client import GrpcClient
from adapter.serving.protos import model_metadata_pb2, tensor_pb2
from adapter.serving.rest_client import RestClient, base_url, code_for_http
from adapter.serving.rest_codec import decode_output, encode_predict_body, name_outputs
from adapter.serving.servable import ModelRef, RpcFailure

SAMPLES = Path(__file__).resolve().parents[3] / "adapter" / "demo" / "samples"
MODELS = ("digit_detector", "digit_classifier", "digit_classifier_bytes")
CONFIG = "model_config_list {{ {} }}"
ENTRY = 'config {{ name: "{0}" base_path: "{1}/{0}" {2} }}'
LABELS = 'model_version_policy { all {} } version_labels { key: "stable" value: 1 }'


@pytest.fixture(scope="module")
def server(
    demo_models_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModelServer]:
    """The demo models with REST on; digit_classifier also has the label ``stable``."""
    entries = [
        ENTRY.format(name, demo_models_dir.resolve(), LABELS if name == "digit_classifier" else "")
        for name in MODELS
    ]
    config = tmp_path_factory.mktemp("rest-client") / "models.config"
    config.write_text(CONFIG.format(" ".join(entries)))
    with start_model_server(["--model_config_file", str(config)], 90, rest=True) as handle:
        yield handle


@pytest.fixture(scope="module")
def rest(server: ModelServer) -> Iterator[RestClient]:
    client = RestClient(server.rest_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc_client(server: ModelServer) -> Iterator[GrpcClient]:
    client = GrpcClient(server.target)
    yield client
    client.close()


def digits_image() -> np.ndarray:
    with Image.open(SAMPLES / "digits.jpg") as image:
        return np.asarray(image.convert("RGB").resize((320, 320)))[np.newaxis]


def seven_bytes() -> np.ndarray:
    array = np.empty(1, dtype=object)
    array[0] = (SAMPLES / "seven.png").read_bytes()
    return array


INPUTS: dict[str, Any] = {
    "digit_detector": lambda: {"input_tensor": digits_image()},
    "digit_classifier": lambda: {
        "images": np.random.default_rng(7).random((3, 32, 32, 3), dtype=np.float32)
    },
    "digit_classifier_bytes": lambda: {"image_bytes": seven_bytes()},
}


@pytest.mark.parametrize("name", MODELS)
def test_predict_matches_grpc(rest: RestClient, grpc_client: GrpcClient, name: str) -> None:
    inputs = INPUTS[name]()
    by_rest = rest.predict(ModelRef(name), inputs, timeout_s=30)
    by_grpc = grpc_client.predict(ModelRef(name), inputs, timeout_s=30)
    assert sorted(by_rest.outputs) == sorted(by_grpc.outputs)
    for output, expected in by_grpc.outputs.items():
        assert by_rest.outputs[output].dtype == expected.dtype, output
        np.testing.assert_array_equal(by_rest.outputs[output], expected)
    assert by_rest.model_version is None  # the REST answer does not say


def test_detections_are_found(rest: RestClient) -> None:
    outputs = rest.predict(ModelRef("digit_detector"), INPUTS["digit_detector"](), timeout_s=30)
    assert outputs.outputs["detection_boxes"].shape == (1, 100, 4)
    assert outputs.outputs["num_detections"][0] >= 1


def test_output_filter(rest: RestClient) -> None:
    inputs = INPUTS["digit_classifier"]()
    answer = rest.predict(
        ModelRef("digit_classifier"), inputs, output_filter=["classes"], timeout_s=30
    )
    assert list(answer.outputs) == ["classes"]
    assert answer.outputs["classes"].dtype == np.int64
    with pytest.raises(RpcFailure) as info:
        rest.predict(ModelRef("digit_classifier"), inputs, output_filter=["nope"], timeout_s=30)
    assert info.value.code is grpc.StatusCode.INVALID_ARGUMENT


def test_version_and_label_paths(rest: RestClient) -> None:
    inputs = INPUTS["digit_classifier"]()
    by_version = rest.predict(ModelRef("digit_classifier", version=1), inputs, timeout_s=30)
    assert by_version.model_version == 1
    label = ModelRef("digit_classifier", version_label="stable")
    np.testing.assert_array_equal(
        rest.predict(label, inputs, timeout_s=30).outputs["classes"], by_version.outputs["classes"]
    )
    assert [s.version for s in rest.model_status(label, timeout_s=10)] == [1]


def test_status_and_metadata_match_grpc(rest: RestClient, grpc_client: GrpcClient) -> None:
    for name in MODELS:
        model = ModelRef(name, version=1)
        assert rest.model_status(model, timeout_s=10) == grpc_client.model_status(
            model, timeout_s=10
        )
        by_rest = rest.signature_defs(model, timeout_s=10)
        by_grpc = grpc_client.signature_defs(model, timeout_s=10)
        assert {k: json_format.MessageToDict(v) for k, v in by_rest.items()} == {
            k: json_format.MessageToDict(v) for k, v in by_grpc.items()
        }
    status = rest.model_status(ModelRef("digit_detector"), timeout_s=10)[0]
    assert (status.version, status.state, status.error_code, status.available) == (
        1,
        "AVAILABLE",
        0,
        True,
    )


ZEROS = np.zeros((1, 32, 32, 3), np.float32)


@pytest.mark.parametrize(
    ("model", "inputs", "code"),
    [
        (ModelRef("nope"), {"images": ZEROS}, "NOT_FOUND"),
        (ModelRef("digit_classifier", version=7), {}, "NOT_FOUND"),
        (ModelRef("digit_classifier", version_label="nope"), {}, "INVALID_ARGUMENT"),
        (ModelRef("digit_classifier", signature="nope"), {}, "INVALID_ARGUMENT"),
        (ModelRef("digit_classifier"), {"pixels": ZEROS}, "INVALID_ARGUMENT"),  # wrong name
        (ModelRef("digit_detector"), {"input_tensor": ZEROS}, "INVALID_ARGUMENT"),  # not uint8
    ],
)  # fmt: skip
def test_server_errors_map_to_grpc_codes(
    rest: RestClient, model: ModelRef, inputs: dict[str, np.ndarray], code: str
) -> None:
    with pytest.raises(RpcFailure) as info:
        rest.predict(model, inputs, timeout_s=10)
    assert info.value.code is grpc.StatusCode[code]
    assert not info.value.local
    assert "http" not in info.value.details  # never the URL


def test_unknown_model_status_and_metadata_are_not_found(rest: RestClient) -> None:
    for call in (rest.model_status, rest.signature_defs):
        with pytest.raises(RpcFailure) as info:
            call(ModelRef("nope"), timeout_s=10)
        assert info.value.code is grpc.StatusCode.NOT_FOUND


def test_nobody_listening_is_unavailable_at_once() -> None:
    client = RestClient(f"127.0.0.1:{free_port()}")
    started = time.monotonic()
    with pytest.raises(RpcFailure) as info:
        client.model_status(ModelRef("digit_classifier"), timeout_s=5)
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started < 1
    assert "127.0.0.1" not in info.value.details


def test_a_stopped_server_is_unavailable_at_once(demo_models_dir: Path) -> None:
    args = ["--model_base_path", str(demo_models_dir / "digit_classifier")]
    server = start_model_server([*args, "--model_name", "digit_classifier"], 90, rest=True)
    client = RestClient(server.rest_url)
    model, inputs = ModelRef("digit_classifier"), INPUTS["digit_classifier"]()
    assert client.predict(model, inputs, timeout_s=30).outputs["classes"].shape == (3,)
    server.stop()
    started = time.monotonic()
    with pytest.raises(RpcFailure) as info:
        client.predict(model, inputs, timeout_s=5)  # the pooled connection is gone
    assert info.value.code is grpc.StatusCode.UNAVAILABLE
    assert time.monotonic() - started < 1


def test_no_answer_is_deadline_exceeded() -> None:
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        client = RestClient(f"http://127.0.0.1:{silent.getsockname()[1]}")
        started = time.monotonic()
        with pytest.raises(RpcFailure) as info:
            client.model_status(ModelRef("m"), timeout_s=0.3)
        assert info.value.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert 0.25 < time.monotonic() - started < 2


def test_one_session_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    client = RestClient("http://127.0.0.1:1", pool_size=4)
    session = client._session_here()
    assert client._session_here() is session
    monkeypatch.setattr("os.getpid", lambda: -1)  # as in a forked worker
    assert client._session_here() is not session
    client.close()


STATUS = b'{"model_version_status": [{"version": "1", "state": "AVAILABLE", "status": {}}]}'


class _StatusHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(STATUS)))
        self.end_headers()
        self.wfile.write(STATUS)

    def log_message(self, *args: Any) -> None:
        pass


def test_https_with_the_adapters_tls_files(tmp_path: Path) -> None:
    certs = make_test_certificates(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certs.ca)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    context.verify_mode = ssl.CERT_REQUIRED  # mTLS
    with ThreadingHTTPServer(("127.0.0.1", 0), _StatusHandler) as https:
        https.socket = context.wrap_socket(https.socket, server_side=True)
        threading.Thread(target=https.serve_forever, args=(0.05,), daemon=True).start()
        port = https.server_address[1]
        pair = {"ca": certs.read("ca"), "cert": certs.read("client_cert")}
        tls = TlsFiles(**pair, key=certs.read("client_key"))
        by_name = RestClient(f"https://localhost:{port}", tls=tls)
        assert by_name.model_status(ModelRef("m"), timeout_s=5)[0].available
        by_address = RestClient(
            f"https://127.0.0.1:{port}", tls=replace(tls, server_name="localhost")
        )
        assert by_address.model_status(ModelRef("m"), timeout_s=5)[0].available
        without_pair = RestClient(f"https://localhost:{port}", tls=TlsFiles(ca=certs.read("ca")))
        with pytest.raises(RpcFailure) as info:
            without_pair.model_status(ModelRef("m"), timeout_s=5)
        assert info.value.code is grpc.StatusCode.UNAVAILABLE
        https.shutdown()


# --- the JSON codec, without a server ----------------------------------------------


def test_http_statuses_map_back_to_grpc_codes() -> None:
    expected = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED",
                503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED", 401: "UNAUTHENTICATED",
                403: "PERMISSION_DENIED", 501: "UNIMPLEMENTED", 500: "INTERNAL",
                418: "INVALID_ARGUMENT", 507: "INTERNAL"}  # fmt: skip
    assert {status: code_for_http(status).name for status in expected} == expected
    assert base_url("tfs:8501") == "http://tfs:8501"
    assert base_url("https://tfs.example/") == "https://tfs.example"


def test_body_is_columnar_with_b64_strings_and_nan() -> None:
    strings = np.array([b"\x00\xff", b"ok"], dtype=object)
    floats = np.array([[1.5, np.nan], [np.inf, -np.inf]], np.float32)
    body = encode_predict_body(
        "sig", {"s": strings, "f": floats, "u": np.arange(3, dtype=np.uint8)}
    )
    assert body == (
        b'{"signature_name":"sig","inputs":{"s":[{"b64":"AP8="},{"b64":"b2s="}],'
        b'"f":[[1.5,NaN],[Infinity,-Infinity]],"u":[0,1,2]}}'
    )


def test_outputs_are_named_and_typed_from_the_signature() -> None:
    info = model_metadata_pb2.TensorInfo(dtype=tensor_pb2.DT_FLOAT)
    info.tensor_shape.dim.add(size=-1)
    info.tensor_shape.dim.add(size=4)
    assert name_outputs([[1.0]], {"boxes": info}, ()) == {"boxes": [[1.0]]}
    assert name_outputs({"a": 1, "b": 2}, None, ()) == {"a": 1, "b": 2}
    assert name_outputs({"b64": "AA=="}, None, ["only"]) == {"only": {"b64": "AA=="}}
    assert name_outputs([1], None, ()) is None
    assert name_outputs([1], {"a": info, "b": info}, ()) is None  # stale signature
    decoded = decode_output([[0.1, 2.0]], info)
    assert decoded.dtype == np.float32 and decoded.tolist() == [[np.float32(0.1), 2.0]]
    assert decode_output([], info).shape == (0, 4)  # an empty batch keeps its inner shape
    strings = decode_output([{"b64": "AP8="}, "text"], None)
    assert strings.dtype == object and strings.tolist() == [b"\x00\xff", b"text"]
    with pytest.raises(RpcFailure) as failure:
        decode_output([[1.0], [1.0, 2.0]], info)
    assert failure.value.local
