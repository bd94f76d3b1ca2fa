"""Predict over real gRPC: both input encodings, strings, output_filter, response model_spec."""

from __future__ import annotations

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from tests.modelserver.predict_requests import request


def float_val_proto(values: list[float]) -> tensor_pb2.TensorProto:
    """A DT_FLOAT vector written with the typed ``float_val`` field (no tensor_content)."""
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=len(values))]
    )
    return tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape, float_val=values)


def test_tensor_content_input(
    prediction: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    proto = tf.make_tensor_proto(np.array([1.0, 2.0, 5.0], np.float32))
    assert proto.tensor_content  # the adapter's wire form
    resp = prediction.Predict(request(x=proto), timeout=10)
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["y"]), [2.5, 3.0, 4.5])
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["x2"]), [2.0, 4.0, 10.0])
    assert not resp.outputs["y"].tensor_content  # TF Serving answers in typed fields
    assert list(resp.outputs["y"].float_val) == [2.5, 3.0, 4.5]


def test_typed_val_input(prediction: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    resp = prediction.Predict(request(x=float_val_proto([4.0, 6.0])), timeout=10)
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["y"]), [4.0, 5.0])


def test_response_model_spec(prediction: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    resp = prediction.Predict(request(x=float_val_proto([1.0])), timeout=10)
    assert resp.model_spec.name == "half_plus_two"
    assert resp.model_spec.version.value == 1
    assert resp.model_spec.signature_name == "serving_default"


def test_string_signature(prediction: prediction_service_pb2_grpc.PredictionServiceStub) -> None:
    text = tf.make_tensor_proto(np.array([b"abc", b"hello"], dtype=object))
    resp = prediction.Predict(request(signature="strings", text=text), timeout=10)
    assert resp.model_spec.signature_name == "strings"
    assert tf.make_ndarray(resp.outputs["length"]).tolist() == [3, 5]
    assert tf.make_ndarray(resp.outputs["upper"]).tolist() == [b"ABC", b"HELLO"]


def test_output_filter_returns_only_asked(
    prediction: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    req = request(x=float_val_proto([1.0]))
    req.output_filter.append("x2")
    resp = prediction.Predict(req, timeout=10)
    assert set(resp.outputs) == {"x2"}


def test_version_and_label_select_version(
    prediction: prediction_service_pb2_grpc.PredictionServiceStub,
) -> None:
    latest = prediction.Predict(request("versioned", x=float_val_proto([0.0])), timeout=10)
    assert latest.model_spec.version.value == 2
    assert tf.make_ndarray(latest.outputs["y"]).tolist() == [3.0]
    req = request("versioned", x=float_val_proto([0.0]))
    req.model_spec.version.value = 1
    assert tf.make_ndarray(prediction.Predict(req, timeout=10).outputs["y"]).tolist() == [2.0]
    req = request("versioned", x=float_val_proto([0.0]))
    req.model_spec.version_label = "stable"
    resp = prediction.Predict(req, timeout=10)
    assert resp.model_spec.version.value == 1


def test_content_encoding_flag(start_model_server, shared_config) -> None:  # type: ignore[no-untyped-def]
    server = start_model_server(
        [
            "--model_config_file",
            str(shared_config),
            "--response_tensor_encoding",
            "content",
            "--file_system_poll_wait_seconds",
            "0",
        ]
    )
    with grpc.insecure_channel(server.target) as ch:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(ch)
        resp = stub.Predict(request(x=float_val_proto([2.0, 4.0])), timeout=10)
    assert resp.outputs["y"].tensor_content and not resp.outputs["y"].float_val
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["y"]), [3.0, 4.0])
