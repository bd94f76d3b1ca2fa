"""PredictionService.Predict: request → signature call → response, with TF Serving's checks.

The checks run in TF Serving's order (predict_util.cc): signature lookup, input
count, each signature input present and parseable, no unknown inputs, the
output filter, then the dtypes the session would reject, then the run itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2

from adapter.modelserver import status
from adapter.modelserver.servables import ServableManager

DEFAULT_SIGNATURE = "serving_default"
ENCODINGS = ("content", "field")

# Which typed *_val field Tensor::AsProtoField() fills for each dtype.
_FIELD_FOR_DTYPE: dict[int, str] = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_STRING: "string_val",
}


class Feed(NamedTuple):
    """One decoded input: the request's DataType enum and the array."""

    dtype: int
    array: np.ndarray


def spec_parts(spec: model_pb2.ModelSpec) -> tuple[str, int | None, str | None]:
    """Split a ModelSpec into (name, version or None, version_label or None)."""
    choice = spec.WhichOneof("version_choice")
    version = spec.version.value if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return spec.name, version, label


def dtype_name(dtype: int) -> str:
    """TensorFlow's DataTypeString(): ``DT_FLOAT`` → ``float``, ``DT_STRING`` → ``string``."""
    try:
        return types_pb2.DataType.Name(dtype).removeprefix("DT_").lower()
    except ValueError:
        return f"unknown dtype {dtype}"


def predict(
    manager: ServableManager, request: predict_pb2.PredictRequest, encoding: str = "content"
) -> predict_pb2.PredictResponse:
    """Serve one Predict request; raises :class:`status.ServingError` on any failure.

    ``encoding`` picks how outputs are written: ``content`` (``tensor_content``,
    the default) or ``field`` (typed ``*_val`` fields, TF Serving's own default).
    """
    if not request.HasField("model_spec"):
        raise status.missing_model_spec()
    servable = manager.resolve(*spec_parts(request.model_spec))
    signature_name = request.model_spec.signature_name or DEFAULT_SIGNATURE
    signature = servable.signature_defs.get(signature_name)
    function = servable.signatures.get(signature_name)
    if signature is None or function is None:
        raise status.signature_not_found(signature_name)
    feeds = gather_inputs(signature, request.inputs)
    aliases = output_aliases(signature, request.output_filter)
    check_dtypes(signature, feeds)
    outputs = run(function, signature, {alias: feed.array for alias, feed in feeds.items()})
    response = predict_pb2.PredictResponse()
    response.model_spec.name = request.model_spec.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature_name
    for alias in aliases:
        response.outputs[alias].CopyFrom(encode(np.asarray(outputs[alias]), encoding))
    return response


def gather_inputs(
    signature: meta_graph_pb2.SignatureDef, inputs: Mapping[str, tensor_pb2.TensorProto]
) -> dict[str, Feed]:
    """Decode the request's tensors per signature input (defaults fill the gaps).

    Mirrors VerifyRequestInputsSize() and saved_model::GetInputValues().
    """
    sent, wanted = set(inputs), set(signature.inputs)
    if len(sent) > len(wanted) or (len(sent) < len(wanted) and not signature.defaults):
        raise status.input_size_mismatch(sent, wanted)
    feeds: dict[str, Feed] = {}
    for alias in sorted(wanted):
        proto = inputs.get(alias) if alias in sent else signature.defaults.get(alias)
        if proto is None:
            feed = signature.inputs[alias].name
            raise status.input_alias_missing(alias, feed, sent, signature.defaults)
        feeds[alias] = Feed(proto.dtype, decode(alias, proto))
    if sent - wanted:
        raise status.invalid_input_names(sent & wanted, sent)
    return feeds


def decode(alias: str, proto: tensor_pb2.TensorProto) -> np.ndarray:
    """tf.make_ndarray() over tensor_content or the typed fields; parse errors are INVALID."""
    try:
        return tf.make_ndarray(proto)
    except Exception:
        raise status.tensor_parsing_error(alias) from None


def output_aliases(
    signature: meta_graph_pb2.SignatureDef, output_filter: Sequence[str]
) -> list[str]:
    """The outputs to return: the filter (validated, no repeats) or every signature output."""
    seen: list[str] = []
    for alias in output_filter:
        if alias not in signature.outputs:
            raise status.output_alias_not_found(alias, signature.outputs)
        if alias in seen:
            raise status.duplicate_output_alias(alias)
        seen.append(alias)
    return seen or sorted(signature.outputs)


def check_dtypes(signature: meta_graph_pb2.SignatureDef, feeds: Mapping[str, Feed]) -> None:
    """Reject a tensor whose dtype differs from its TensorInfo, as the session's call frame does.

    ``arg[i]`` counts feeds in the sorted order of their tensor names.
    """
    ordered = sorted((signature.inputs[alias].name, alias) for alias in feeds)
    for index, (_, alias) in enumerate(ordered):
        expected = signature.inputs[alias].dtype
        provided = feeds[alias].dtype
        if provided != expected:
            raise status.dtype_mismatch(index, dtype_name(expected), dtype_name(provided))


def run(
    function: Any, signature: meta_graph_pb2.SignatureDef, arrays: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """Call the signature function with tensors by alias; TF errors become statuses."""
    try:
        kwargs = {
            alias: tf.constant(array, dtype=tf.dtypes.as_dtype(signature.inputs[alias].dtype))
            for alias, array in arrays.items()
        }
        result = function(**kwargs)
        return {alias: value.numpy() for alias, value in result.items()}
    except Exception as exc:
        raise status.from_exception(exc) from None


def encode(array: np.ndarray, encoding: str = "content") -> tensor_pb2.TensorProto:
    """Encode an output: ``tensor_content`` via tf.make_tensor_proto, or typed ``*_val`` fields."""
    if encoding == "content" or array.dtype == object:
        return tf.make_tensor_proto(array)
    dtype = tf.dtypes.as_dtype(array.dtype).as_datatype_enum
    field = _FIELD_FOR_DTYPE.get(dtype)
    if field is None:
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=dtype)
    proto.tensor_shape.CopyFrom(
        tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=d) for d in array.shape]
        )
    )
    getattr(proto, field).extend(array.ravel().tolist())
    return proto
