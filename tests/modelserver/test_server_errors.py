"""TF Serving's status codes and messages for bad Predict requests; the server keeps serving."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from tests.modelserver.predict_requests import request

Stub = prediction_service_pb2_grpc.PredictionServiceStub


def call_error(stub: Stub, req: predict_pb2.PredictRequest) -> grpc.RpcError:
    """Send ``req`` and return the RpcError it must fail with."""
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(req, timeout=10)
    return info.value


X = np.array([1.0], np.float32)


def test_unknown_model(prediction: Stub) -> None:
    err = call_error(prediction, request("foo", x=X))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "Servable not found for request: Latest(foo)"


def test_unknown_version(prediction: Stub) -> None:
    req = request(x=X)
    req.model_spec.version.value = 7
    err = call_error(prediction, req)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "Servable not found for request: Specific(half_plus_two, 7)"


def test_unknown_version_label(prediction: Stub) -> None:
    req = request(x=X)
    req.model_spec.version_label = "nope"
    err = call_error(prediction, req)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "Unrecognized servable version label: nope"


def test_label_of_unloaded_version(prediction: Stub) -> None:
    req = request(x=X)
    req.model_spec.version_label = "canary"  # -> version 2, not on disk
    err = call_error(prediction, req)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert err.details() == "Servable not found for request: Specific(half_plus_two, 2)"


def test_unknown_signature(prediction: Stub) -> None:
    err = call_error(prediction, request(signature="nope", x=X))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.details() == 'Serving signature key "nope" not found.'


def test_missing_input(prediction: Stub) -> None:
    err = call_error(prediction, request())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == (
        "input size does not match signature: 0!=1 len({}) != len({x}). "
        "Sent extra: {}. Missing but required: {x}."
    )


def test_extra_input(prediction: Stub) -> None:
    err = call_error(prediction, request(x=X, z=X))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == (
        "input size does not match signature: 2!=1 len({x,z}) != len({x}). "
        "Sent extra: {z}. Missing but required: {}."
    )


def test_wrongly_named_input(prediction: Stub) -> None:
    err = call_error(prediction, request(z=X))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details().startswith(
        "Signature input alias: x(feed name: serving_default_x:0) not found in request"
    )


def test_wrong_dtype(prediction: Stub) -> None:
    err = call_error(prediction, request(x=np.array([b"a"], dtype=object)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "Expects arg[0] to be float but string is provided"


def test_wrong_shape_is_invalid_argument_without_traceback(prediction: Stub) -> None:
    err = call_error(prediction, request(signature="matrix", m=np.ones([3], np.float32)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ndims must be >= 2" in err.details()
    for leak in ("Traceback", 'File "', "Detected at node", "[Op:"):
        assert leak not in err.details()


def test_corrupt_tensor_content(prediction: Stub) -> None:
    req = request(x=X)
    req.inputs["x"].tensor_content = b"\x00\x01\x02"  # 3 bytes for a [1] float
    err = call_error(prediction, req)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "tensor parsing error: x"


def test_unknown_output_filter(prediction: Stub) -> None:
    req = request(x=X)
    req.output_filter.append("nope")
    err = call_error(prediction, req)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == (
        "output tensor alias not found in signature: nope Outputs expected to be in the set {x2,y}."
    )


def test_missing_model_spec(prediction: Stub) -> None:
    err = call_error(prediction, predict_pb2.PredictRequest())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.details() == "Missing ModelSpec"


def test_server_keeps_serving_after_errors(prediction: Stub) -> None:
    for _ in range(3):
        call_error(prediction, request(x=np.array([b"a"], dtype=object)))
        call_error(prediction, request(signature="matrix", m=np.ones([3], np.float32)))
    resp = prediction.Predict(request(x=X), timeout=10)
    assert tf.make_ndarray(resp.outputs["y"]).tolist() == [2.5]
