"""GetModelMetadata returns the on-disk SignatureDefs, packed as TF Serving packs them."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, prediction_service_pb2_grpc

Stub = prediction_service_pb2_grpc.PredictionServiceStub


def metadata_request(name: str, *fields: str) -> get_model_metadata_pb2.GetModelMetadataRequest:
    """A GetModelMetadataRequest for ``name`` asking for ``fields``."""
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = name
    req.metadata_field.extend(fields)
    return req


def test_signature_def_matches_saved_model(prediction: Stub, shared_config: Path) -> None:
    resp = prediction.GetModelMetadata(
        metadata_request("half_plus_two", "signature_def"), timeout=10
    )
    assert resp.model_spec.name == "half_plus_two"
    assert resp.model_spec.version.value == 1
    any_msg = resp.metadata["signature_def"]
    assert any_msg.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert any_msg.Unpack(signatures)

    on_disk = saved_model_pb2.SavedModel()
    pb = shared_config.parent / "models" / "half_plus_two" / "1" / "saved_model.pb"
    on_disk.ParseFromString(pb.read_bytes())
    assert dict(signatures.signature_def) == dict(on_disk.meta_graphs[0].signature_def)

    default = signatures.signature_def["serving_default"]
    assert default.method_name == "tensorflow/serving/predict"
    assert default.inputs["x"].name == "serving_default_x:0"
    assert default.inputs["x"].dtype == 1  # DT_FLOAT
    assert [d.size for d in default.inputs["x"].tensor_shape.dim] == [-1]
    assert set(default.outputs) == {"y", "x2"}
    assert signatures.signature_def["strings"].inputs["text"].dtype == 7  # DT_STRING


def test_metadata_unknown_model(prediction: Stub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        prediction.GetModelMetadata(metadata_request("foo", "signature_def"), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "Servable not found for request: Latest(foo)"


def test_metadata_needs_a_field(prediction: Stub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        prediction.GetModelMetadata(metadata_request("half_plus_two"), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (
        info.value.details() == "GetModelMetadataRequest must specify at least one metadata_field"
    )


def test_metadata_unsupported_field(prediction: Stub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        prediction.GetModelMetadata(metadata_request("half_plus_two", "graph"), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "is not supported" in info.value.details()
