"""Wire compatibility of the adapter's own protos with tensorflow-serving-api.

The adapter never imports TensorFlow; this test does, to prove that every
message and dtype the adapter uses means the same on both sides of the wire:

- what the adapter builds (``codec``, ``ModelRef.to_spec()``, its own
  ``adapter.tfs`` messages), serialized, parses with TF Serving's classes into
  what TensorFlow itself would have built;
- what TF Serving and TensorFlow build (``tf.make_tensor_proto``, the typed
  ``*_val`` fields of ``Tensor::AsProtoField``, an ``Any``-packed
  ``SignatureDefMap`` of a real SavedModel), serialized, parses with ours and
  decodes with ``codec.to_ndarray`` to the same arrays.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from google.protobuf.message import Message

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
tf = pytest.importorskip("tensorflow")
tfs_predict = pytest.importorskip("tensorflow_serving.apis.predict_pb2")
tfs_model = pytest.importorskip("tensorflow_serving.apis.model_pb2")
tfs_metadata = pytest.importorskip("tensorflow_serving.apis.get_model_metadata_pb2")
tfs_status = pytest.importorskip("tensorflow_serving.apis.get_model_status_pb2")

from tensorflow.core.framework import tensor_pb2 as tf_tensor_pb2  # noqa: E402
from tensorflow.core.framework import types_pb2 as tf_types_pb2  # noqa: E402
from tensorflow.core.protobuf import saved_model_pb2  # noqa: E402

from adapter.serving import codec  # noqa: E402
from adapter.serving.protos import (  # noqa: E402
    model_metadata_pb2,
    model_status_pb2,
    predict_pb2,
    tensor_pb2,
)
from adapter.serving.servable import ModelRef  # noqa: E402

Array = np.ndarray[Any, Any]


def _cross(message: Message, other: type[Message]) -> Any:
    """``message`` serialized, parsed as ``other`` (the same message on the other side)."""
    return other.FromString(message.SerializeToString())


# --------------------------------------------------------------------------- tensors


def _numeric(dtype: str) -> Array:
    """A 2x4 array of ``dtype`` with its edge values: extremes, infinities, NaN, -0."""
    np_dtype = np.dtype(dtype)
    if np_dtype == np.bool_:
        return np.array([[True, False, False, True], [False, True, True, False]])
    if np_dtype.kind == "f":
        fi = np.finfo(np_dtype)
        values = [-np.inf, fi.min, -0.0, np.nan, fi.smallest_subnormal, 1 / 3, fi.max, np.inf]
    else:
        ii = np.iinfo(np_dtype)
        values = [ii.min, ii.min + 1, 0, 1, 7, 100, ii.max - 1, ii.max]
    return np.array(values, dtype=np_dtype).reshape(2, 4)


# Every dtype in the codec's table, and DT_STRING (bytes with NULs, binary, empty).
NUMERIC = [
    "float32", "float64", "float16", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool",
]  # fmt: skip
SAMPLES: dict[str, Array] = {dtype: _numeric(dtype) for dtype in NUMERIC}
SAMPLES["string"] = np.array(
    [[b"\xff\xd8\xff\xe0jpeg", b""], [b"\x00nul\x00", "unicod\u00e9".encode()]], dtype=object
)

# The typed field TF Serving's Tensor::AsProtoField() fills for each dtype
# (tensorflow/core/framework/tensor.cc, ProtoHelper<T>).
_PROTO_FIELD = {
    "float32": "float_val", "float64": "double_val", "float16": "half_val",
    "int8": "int_val", "int16": "int_val", "int32": "int_val", "uint8": "int_val",
    "uint16": "int_val", "int64": "int64_val", "uint32": "uint32_val",
    "uint64": "uint64_val", "bool": "bool_val", "string": "string_val",
}  # fmt: skip


def _as_proto_field(array: Array) -> tf_tensor_pb2.TensorProto:
    """What TF Serving sends by default: every value in the dtype's typed ``*_val`` field."""
    dtype = "string" if array.dtype == object else str(array.dtype)
    proto = tf_tensor_pb2.TensorProto(
        dtype=tf.as_dtype(dtype).as_datatype_enum,
        tensor_shape=tf.TensorShape(array.shape).as_proto(),
    )
    values = array.view(np.uint16) if dtype == "float16" else array  # half_val: bit patterns
    getattr(proto, _PROTO_FIELD[dtype]).extend(values.ravel().tolist())
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)  # TensorFlow agrees
    return proto


def _as_proto_tensor_content(array: Array) -> tf_tensor_pb2.TensorProto:
    """Tensor::AsProtoTensorContent(): raw little-endian bytes, for every numeric dtype."""
    proto = tf_tensor_pb2.TensorProto(
        dtype=tf.as_dtype(array.dtype).as_datatype_enum,
        tensor_shape=tf.TensorShape(array.shape).as_proto(),
        tensor_content=array.astype(array.dtype.newbyteorder("<")).tobytes(),
    )
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)  # TensorFlow agrees
    return proto


# How TensorFlow and TF Serving encode a tensor: (TensorProto, the array it holds).
THEIR_ENCODINGS: dict[str, Callable[[Array], tuple[tf_tensor_pb2.TensorProto, Array]]] = {
    # tensor_content for most dtypes; typed fields for bool, uint16 and strings.
    "make_tensor_proto": lambda a: (tf.make_tensor_proto(a), a),
    # A single element always goes to the typed field.
    "make_tensor_proto one element": lambda a: (tf.make_tensor_proto(a[:1, :1]), a[:1, :1]),
    # One value and a shape: the last value fills the rest.
    "make_tensor_proto one value fills the shape": lambda a: (
        tf.make_tensor_proto(a.flat[-1], shape=a.shape),
        np.full(a.shape, a.flat[-1], dtype=a.dtype),
    ),
    "AsProtoField": lambda a: (_as_proto_field(a), a),
    "AsProtoTensorContent": lambda a: (_as_proto_tensor_content(a), a),
}
# C++ frames a DT_STRING tensor's content with varint lengths, which neither
# tf.make_ndarray() nor the codec reads; tensorflow_model_server answers with
# AsProtoField, so strings come as string_val.
TENSOR_CASES = [
    (dtype, encoding)
    for dtype in SAMPLES
    for encoding in THEIR_ENCODINGS
    if not (dtype == "string" and encoding == "AsProtoTensorContent")
]


@pytest.mark.parametrize(("dtype", "encoding"), TENSOR_CASES)
def test_tf_servings_tensors_decode_with_the_codec(dtype: str, encoding: str) -> None:
    tensor, expected = THEIR_ENCODINGS[encoding](SAMPLES[dtype])
    theirs = tfs_predict.PredictResponse()
    theirs.model_spec.name = "det"
    theirs.model_spec.version.value = 7
    theirs.outputs["y"].CopyFrom(tensor)

    ours = _cross(theirs, predict_pb2.PredictResponse)
    assert ours.model_spec.name == "det"
    assert ours.model_spec.version.value == 7
    decoded = codec.to_ndarray(ours.outputs["y"])
    assert decoded.dtype == expected.dtype
    assert decoded.shape == expected.shape
    np.testing.assert_array_equal(decoded, expected)


@pytest.mark.parametrize("dtype", list(SAMPLES))
def test_the_codecs_tensors_parse_with_tensorflow(dtype: str) -> None:
    array = SAMPLES[dtype]
    if dtype == "string":
        array = array.ravel()  # DT_STRING inputs are 1-D, one element per image
        tensor = codec.strings_to_tensor_proto(list(array))
    else:
        tensor = codec.to_tensor_proto(array)
    ours = predict_pb2.PredictRequest()
    ours.inputs["x"].CopyFrom(tensor)

    parsed = _cross(ours, tfs_predict.PredictRequest).inputs["x"]
    reference = tf.make_tensor_proto(list(array) if dtype == "string" else array)
    assert parsed.dtype == reference.dtype
    assert parsed.tensor_shape == reference.tensor_shape
    if reference.tensor_content or dtype == "string":
        assert parsed == reference  # byte for byte what TensorFlow builds
    decoded = tf.make_ndarray(parsed)
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


def test_data_type_enum_matches_tensorflow() -> None:
    for name, value in tensor_pb2.DataType.items():
        assert tf_types_pb2.DataType.Value(name) == value, name
    for name in [*NUMERIC, "string"]:
        assert codec.dtype_from_name(name) == tf.as_dtype(name).as_datatype_enum, name


# --------------------------------------------------------------------------- messages

REFS = {
    "name only": ModelRef("det"),
    "version": ModelRef("det", signature="detect", version=3),
    "version 0": ModelRef("det", version=0),
    "version 2**40": ModelRef("det", version=2**40),
    "version_label": ModelRef("det", signature="detect", version_label="stable"),
}


def _their_spec(ref: ModelRef, *, with_signature: bool = True) -> Any:
    """The ModelSpec a TF Serving client builds for ``ref``."""
    spec = tfs_model.ModelSpec(name=ref.name)
    if with_signature:
        spec.signature_name = ref.signature
    if ref.version is not None:
        spec.version.value = ref.version
    elif ref.version_label is not None:
        spec.version_label = ref.version_label
    return spec


def _assert_same_message(ours: Message, theirs: Message) -> None:
    """Each side, serialized, parses on the other side into what that side built itself."""
    assert _cross(ours, type(theirs)) == theirs
    assert _cross(theirs, type(ours)) == ours


@pytest.mark.parametrize("with_signature", [True, False])
@pytest.mark.parametrize("ref", list(REFS.values()), ids=list(REFS))
def test_model_spec(ref: ModelRef, with_signature: bool) -> None:
    ours = ref.to_spec(with_signature=with_signature)
    _assert_same_message(ours, _their_spec(ref, with_signature=with_signature))
    parsed = _cross(ours, tfs_model.ModelSpec)
    expected = "version" if ref.version is not None else ref.version_label and "version_label"
    assert parsed.WhichOneof("version_choice") == expected


REQUEST_INPUTS: dict[str, Array] = {
    "images": np.random.default_rng(0).standard_normal((1, 4, 5, 3)).astype(np.float32),
    "mask": np.random.default_rng(1).integers(0, 256, (1, 4, 5), dtype=np.uint8),
    "ids": np.array([[1, -2, 2**40], [0, 5, -(2**50)]], dtype=np.int64),
    "image_bytes": np.array([b"\xff\xd8\xff\xe0jpeg", b"\x89PNG\r\n\x1a\n"], dtype=object),
}


@pytest.mark.parametrize("ref", [REFS["version"], REFS["version_label"]], ids=["version", "label"])
def test_predict_request(ref: ModelRef) -> None:
    output_filter = ["detection_boxes", "num_detections"]
    ours = predict_pb2.PredictRequest(model_spec=ref.to_spec(), output_filter=output_filter)
    theirs = tfs_predict.PredictRequest(model_spec=_their_spec(ref), output_filter=output_filter)
    for name, array in REQUEST_INPUTS.items():
        if array.dtype == object:
            ours.inputs[name].CopyFrom(codec.strings_to_tensor_proto(list(array)))
            theirs.inputs[name].CopyFrom(tf.make_tensor_proto(list(array)))
        else:
            ours.inputs[name].CopyFrom(codec.to_tensor_proto(array))
            theirs.inputs[name].CopyFrom(tf.make_tensor_proto(array))
    _assert_same_message(ours, theirs)
    parsed = _cross(theirs, predict_pb2.PredictRequest)
    for name, array in REQUEST_INPUTS.items():
        np.testing.assert_array_equal(codec.to_ndarray(parsed.inputs[name]), array)


def test_predict_response() -> None:
    ours = predict_pb2.PredictResponse(model_spec=REFS["version"].to_spec())
    theirs = tfs_predict.PredictResponse(model_spec=_their_spec(REFS["version"]))
    for name in ("images", "ids"):
        ours.outputs[name].CopyFrom(codec.to_tensor_proto(REQUEST_INPUTS[name]))
        theirs.outputs[name].CopyFrom(tf.make_tensor_proto(REQUEST_INPUTS[name]))
    _assert_same_message(ours, theirs)


@pytest.mark.parametrize("ref", list(REFS.values()), ids=list(REFS))
def test_model_status_and_metadata_requests(ref: ModelRef) -> None:
    # Both carry the spec without a signature, as the adapter sends them.
    spec = ref.to_spec(with_signature=False)
    their_spec = _their_spec(ref, with_signature=False)
    _assert_same_message(
        model_status_pb2.GetModelStatusRequest(model_spec=spec),
        tfs_status.GetModelStatusRequest(model_spec=their_spec),
    )
    _assert_same_message(
        model_metadata_pb2.GetModelMetadataRequest(
            model_spec=spec, metadata_field=["signature_def"]
        ),
        tfs_metadata.GetModelMetadataRequest(
            model_spec=their_spec, metadata_field=["signature_def"]
        ),
    )


def test_model_status_response_states_and_error_codes() -> None:
    """Every version state, and every tensorflow.error.Code (the gRPC status code it equals)."""
    states = tfs_status.ModelVersionStatus.State.DESCRIPTOR.values
    assert {s.name: s.number for s in states} == dict(
        model_status_pb2.ModelVersionStatus.State.items()
    )
    status_type = tfs_status.ModelVersionStatus.DESCRIPTOR.fields_by_name["status"].message_type
    codes = {
        value.name: value.number
        for value in status_type.fields_by_name["error_code"].enum_type.values
        if not value.name.startswith("DO_NOT_USE")
    }
    assert codes == {code.name: code.value[0] for code in grpc.StatusCode}
    ours = model_status_pb2.GetModelStatusResponse()
    theirs = tfs_status.GetModelStatusResponse()
    for version, code in enumerate(grpc.StatusCode, start=1):
        state = states[version % len(states)]
        message = "" if code is grpc.StatusCode.OK else f"version {version}: {code.name}"
        mine = ours.model_version_status.add(version=version)
        mine.state = model_status_pb2.ModelVersionStatus.State.Value(state.name)
        mine.status.error_code = code.value[0]
        mine.status.error_message = message
        other = theirs.model_version_status.add(version=version, state=state.number)
        other.status.error_code = codes[code.name]
        other.status.error_message = message
    _assert_same_message(ours, theirs)


# --------------------------------------------------------------------------- metadata


@pytest.fixture(scope="module")
def signature_defs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """TensorFlow's SignatureDefs of a real SavedModel (as TF Serving reads them from disk).

    A detector (uint8 images of any size), a classifier (float32), a bytes
    model (DT_STRING image_bytes) and an input of unknown rank; the map also
    holds TF2's ``__saved_model_init_op`` (DT_INVALID, unknown rank).
    """

    class Demo(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
        def detect(self, input_tensor: Any) -> dict[str, Any]:
            batch = tf.shape(input_tensor)[0]
            return {
                "detection_boxes": tf.zeros([batch, 100, 4]),
                "detection_classes": tf.zeros([batch, 100]),
                "detection_scores": tf.zeros([batch, 100]),
                "num_detections": tf.zeros([batch]),
            }

        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)])
        def classify(self, images: Any) -> dict[str, Any]:
            scores = tf.reduce_mean(images, axis=[1, 2]) * tf.ones([1, 11])
            return {"classes": tf.argmax(scores, axis=1), "probabilities": tf.nn.softmax(scores)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def from_bytes(self, image_bytes: Any) -> dict[str, Any]:
            return {"classes": tf.strings.length(image_bytes, unit="BYTE")}

        @tf.function(input_signature=[tf.TensorSpec(None, tf.float16)])
        def any_rank(self, x: Any) -> dict[str, Any]:
            return {"doubled": x * 2, "positive": x > 0}

    module = Demo()
    export_dir = tmp_path_factory.mktemp("savedmodel")
    tf.saved_model.save(
        module,
        str(export_dir),
        signatures={
            "serving_default": module.detect,
            "classify": module.classify,
            "bytes": module.from_bytes,
            "any_rank": module.any_rank,
        },
    )
    saved_model = saved_model_pb2.SavedModel.FromString(
        Path(export_dir, "saved_model.pb").read_bytes()
    )
    (meta_graph,) = saved_model.meta_graphs
    return dict(meta_graph.signature_def)


def _summary(signatures: Any) -> dict[str, Any]:
    """The fields our subset reads, per signature, from either side's messages."""

    def info(tensor: Any) -> tuple[str, str, bool, list[int]]:
        dims = [dim.size for dim in tensor.tensor_shape.dim]
        name = tf_types_pb2.DataType.Name(tensor.dtype)  # the same numbers on both sides
        return tensor.name, name, tensor.tensor_shape.unknown_rank, dims

    return {
        key: {
            "method_name": sig.method_name,
            "inputs": {alias: info(t) for alias, t in sig.inputs.items()},
            "outputs": {alias: info(t) for alias, t in sig.outputs.items()},
        }
        for key, sig in signatures.items()
    }


def test_metadata_response_from_tf_serving_unpacks_with_ours(
    signature_defs: dict[str, Any],
) -> None:
    theirs = tfs_metadata.GetModelMetadataResponse(model_spec=_their_spec(REFS["version"]))
    signature_map = tfs_metadata.SignatureDefMap()
    for key, signature in signature_defs.items():
        signature_map.signature_def[key].CopyFrom(signature)
    theirs.metadata["signature_def"].Pack(signature_map)

    ours = _cross(theirs, model_metadata_pb2.GetModelMetadataResponse)
    assert ours.model_spec == REFS["version"].to_spec()
    packed = ours.metadata["signature_def"]
    assert packed.type_url == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    unpacked = model_metadata_pb2.SignatureDefMap.FromString(packed.value)
    assert _summary(unpacked.signature_def) == _summary(signature_defs)
    assert set(unpacked.signature_def) >= {"serving_default", "bytes", "__saved_model_init_op"}
    # Registry dtype names are TensorFlow's dtype names.
    inputs = {key: sig.inputs for key, sig in unpacked.signature_def.items()}
    assert codec.dtype_name(inputs["serving_default"]["input_tensor"].dtype) == "uint8"
    assert codec.dtype_name(inputs["bytes"]["image_bytes"].dtype) == "string"
    assert inputs["any_rank"]["x"].tensor_shape.unknown_rank


def test_metadata_response_from_ours_unpacks_with_tf_serving(
    signature_defs: dict[str, Any],
) -> None:
    signature_map = model_metadata_pb2.SignatureDefMap()
    for key, summary in _summary(signature_defs).items():
        signature = signature_map.signature_def[key]
        signature.method_name = summary["method_name"]
        for side in ("inputs", "outputs"):
            for alias, (name, dtype, unknown_rank, dims) in summary[side].items():
                info = getattr(signature, side)[alias]
                info.name = name
                info.dtype = tensor_pb2.DataType.Value(dtype)
                info.tensor_shape.unknown_rank = unknown_rank
                for size in dims:
                    info.tensor_shape.dim.add(size=size)
    ours = model_metadata_pb2.GetModelMetadataResponse(model_spec=REFS["version"].to_spec())
    # Any.Pack() would name our package: name TF Serving's message, as TF Serving does.
    packed = ours.metadata["signature_def"]
    packed.type_url = "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    packed.value = signature_map.SerializeToString()

    theirs = _cross(ours, tfs_metadata.GetModelMetadataResponse)
    assert theirs.model_spec == _their_spec(REFS["version"])
    unpacked = tfs_metadata.SignatureDefMap()
    assert theirs.metadata["signature_def"].Unpack(unpacked)
    assert _summary(unpacked.signature_def) == _summary(signature_defs)
