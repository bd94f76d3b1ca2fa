"""Wire compatibility of the adapter's own protos with tensorflow-serving-api.

The adapter never imports TensorFlow; this test does, to prove that what the
adapter sends parses with TF Serving's own classes into the same tensors, and
that what TF Serving sends decodes identically on our side.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
tfs_predict = pytest.importorskip("tensorflow_serving.apis.predict_pb2")
tfs_metadata = pytest.importorskip("tensorflow_serving.apis.get_model_metadata_pb2")
tfs_status = pytest.importorskip("tensorflow_serving.apis.get_model_status_pb2")

from tensorflow.core.protobuf import meta_graph_pb2  # noqa: E402

from adapter.serving import codec  # noqa: E402
from adapter.serving.client import ModelRef  # noqa: E402
from adapter.serving.protos import (  # noqa: E402
    model_metadata_pb2,
    model_status_pb2,
    predict_pb2,
)

ARRAYS = {
    "uint8": np.random.default_rng(0).integers(0, 256, (1, 4, 5, 3), dtype=np.uint8),
    "float32": np.random.default_rng(1).standard_normal((2, 3, 3)).astype(np.float32),
    "int64": np.array([[1, -2, 2**40], [0, 5, -(2**50)]], dtype=np.int64),
}


def _our_request(inputs: dict[str, object]) -> bytes:
    request = predict_pb2.PredictRequest(
        model_spec=ModelRef("det", signature="sig", version=3).to_spec(),
        output_filter=["b", "a"],
    )
    for name, tensor in inputs.items():
        request.inputs[name].CopyFrom(tensor)
    return request.SerializeToString()


@pytest.mark.parametrize("dtype", sorted(ARRAYS))
def test_numeric_request_parses_like_make_tensor_proto(dtype: str) -> None:
    array = ARRAYS[dtype]
    parsed = tfs_predict.PredictRequest.FromString(
        _our_request({"x": codec.to_tensor_proto(array)})
    )
    theirs = tf.make_tensor_proto(array)
    ours = parsed.inputs["x"]
    assert ours.dtype == theirs.dtype
    assert ours.tensor_shape == theirs.tensor_shape
    assert ours.tensor_content == theirs.tensor_content
    np.testing.assert_array_equal(tf.make_ndarray(ours), array)
    assert parsed.model_spec.name == "det"
    assert parsed.model_spec.signature_name == "sig"
    assert parsed.model_spec.version.value == 3
    assert list(parsed.output_filter) == ["b", "a"]


def test_string_request_parses_like_make_tensor_proto() -> None:
    values = [b"\xff\xd8\xff\xe0jpeg", b"\x89PNG\r\n\x1a\n"]
    parsed = tfs_predict.PredictRequest.FromString(
        _our_request({"image_bytes": codec.strings_to_tensor_proto(values)})
    )
    theirs = tf.make_tensor_proto(values)
    assert parsed.inputs["image_bytes"] == theirs
    assert list(tf.make_ndarray(parsed.inputs["image_bytes"])) == values


def test_version_label_reaches_tf_serving() -> None:
    spec = ModelRef("det", version_label="stable").to_spec()
    parsed = tfs_predict.PredictRequest.FromString(
        predict_pb2.PredictRequest(model_spec=spec).SerializeToString()
    )
    assert parsed.model_spec.version_label == "stable"
    assert not parsed.model_spec.HasField("version")


def _tf_response(typed: bool) -> bytes:
    response = tfs_predict.PredictResponse()
    response.model_spec.name = "det"
    response.model_spec.version.value = 7
    boxes = np.linspace(0, 1, 24, dtype=np.float32).reshape(1, 6, 4)
    classes = np.array([[3, 1, 2, 0, 0, 0]], dtype=np.int64)
    if typed:
        response.outputs["boxes"].dtype = tf.float32.as_datatype_enum
        response.outputs["boxes"].float_val.extend(boxes.ravel().tolist())
        response.outputs["classes"].dtype = tf.int64.as_datatype_enum
        response.outputs["classes"].int64_val.extend(classes.ravel().tolist())
        for name, shape in (("boxes", boxes.shape), ("classes", classes.shape)):
            for size in shape:
                response.outputs[name].tensor_shape.dim.add(size=size)
    else:
        response.outputs["boxes"].CopyFrom(tf.make_tensor_proto(boxes))
        response.outputs["classes"].CopyFrom(tf.make_tensor_proto(classes))
    response.outputs["labels"].CopyFrom(tf.make_tensor_proto([b"a", b"b"]))
    return response.SerializeToString()


def test_responses_decode_the_same_from_content_and_typed_fields() -> None:
    decoded = []
    for typed in (False, True):
        response = predict_pb2.PredictResponse.FromString(_tf_response(typed))
        assert response.model_spec.version.value == 7
        decoded.append({k: codec.to_ndarray(v) for k, v in response.outputs.items()})
    content, typed_fields = decoded
    assert set(content) == set(typed_fields) == {"boxes", "classes", "labels"}
    for name in content:
        assert content[name].dtype == typed_fields[name].dtype
        np.testing.assert_array_equal(content[name], typed_fields[name])
    np.testing.assert_array_equal(content["classes"], [[3, 1, 2, 0, 0, 0]])
    assert list(content["labels"]) == [b"a", b"b"]


def test_signature_def_map_unpacks_from_tf_servings_any() -> None:
    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    signature.inputs["input_tensor"].name = "serving_default_input_tensor:0"
    signature.inputs["input_tensor"].dtype = tf.uint8.as_datatype_enum
    for size in (-1, -1, -1, 3):
        signature.inputs["input_tensor"].tensor_shape.dim.add(size=size)
    signature.outputs["detection_boxes"].dtype = tf.float32.as_datatype_enum
    theirs = tfs_metadata.GetModelMetadataResponse()
    sig_map = tfs_metadata.SignatureDefMap()
    sig_map.signature_def["serving_default"].CopyFrom(signature)
    theirs.metadata["signature_def"].Pack(sig_map)

    ours = model_metadata_pb2.GetModelMetadataResponse.FromString(theirs.SerializeToString())
    unpacked = model_metadata_pb2.SignatureDefMap.FromString(ours.metadata["signature_def"].value)
    sig = unpacked.signature_def["serving_default"]
    assert sig.method_name == "tensorflow/serving/predict"
    assert sig.inputs["input_tensor"].dtype == codec.dtype_from_name("uint8")
    assert [d.size for d in sig.inputs["input_tensor"].tensor_shape.dim] == [-1, -1, -1, 3]
    assert sig.outputs["detection_boxes"].dtype == codec.dtype_from_name("float32")


def test_model_status_parses() -> None:
    theirs = tfs_status.GetModelStatusResponse()
    status = theirs.model_version_status.add(version=2)
    status.state = tfs_status.ModelVersionStatus.AVAILABLE
    status.status.error_code = 0
    ours = model_status_pb2.GetModelStatusResponse.FromString(theirs.SerializeToString())
    assert ours.model_version_status[0].version == 2
    assert ours.model_version_status[0].state == model_status_pb2.ModelVersionStatus.AVAILABLE
