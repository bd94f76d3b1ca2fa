"""TF Serving's REST JSON for the REST client: numpy inputs to a body, answers to arrays.

Numeric arrays are written by orjson straight from their buffers; DT_STRING
values become ``{"b64": ...}``; NaN and infinities are written as TF Serving
reads and writes them (``NaN``, ``Infinity``). Answers carry no dtypes, so
the signature's TensorInfo gives each output its dtype (float32 stays
float32) and, for an empty batch, its inner dimensions.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import orjson

from adapter.serving import codec
from adapter.serving.protos import model_metadata_pb2, model_status_pb2, tensor_pb2
from adapter.serving.servable import RpcFailure, VersionStatus

TensorInfo = model_metadata_pb2.TensorInfo
_JSON_DTYPES = frozenset(  # what orjson writes from a numpy buffer
    {
        "float64", "float32", "float16", "int64", "int32", "int16", "int8",
        "uint64", "uint32", "uint16", "uint8", "bool",
    }
)  # fmt: skip


def encode_predict_body(signature: str, inputs: Mapping[str, npt.NDArray[Any]]) -> bytes:
    """The columnar ``:predict`` body; ValueError for an array JSON can't carry."""
    columns = {name: _input_json(array) for name, array in inputs.items()}
    try:
        return orjson.dumps(
            {"signature_name": signature, "inputs": columns}, option=orjson.OPT_SERIALIZE_NUMPY
        )
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"cannot write the inputs as JSON: {exc}") from None


def _input_json(array: npt.NDArray[Any]) -> Any:
    """One input as something orjson writes without Python number lists."""
    if array.dtype == object:
        flat = [
            {"b64": base64.b64encode(_as_bytes(value)).decode("ascii")} for value in array.ravel()
        ]
        return _nest(flat, array.shape)
    if array.dtype.name not in _JSON_DTYPES:
        raise ValueError(f"unsupported array dtype {array.dtype}")
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        tokens = [_float_token(float(value)) for value in array.ravel()]
        return orjson.Fragment(_join(tokens, array.shape))
    if array.ndim == 0:
        return array[()]
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))


def _as_bytes(value: Any) -> bytes:
    """A DT_STRING element as bytes (text is UTF-8 encoded)."""
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _float_token(value: float) -> str:
    """A JSON number token, with TF Serving's ``NaN``/``Infinity``/``-Infinity``."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _nest(flat: list[Any], shape: tuple[int, ...]) -> Any:
    """Fold a flat list into nested lists of ``shape`` (the element itself for ``()``)."""
    if not shape:
        return flat[0]
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _join(tokens: list[str], shape: tuple[int, ...]) -> str:
    """Nested JSON array text of ``shape`` from flat number tokens."""
    if not shape:
        return tokens[0]
    step = len(tokens) // shape[0] if shape[0] else 0
    return (
        "["
        + ",".join(_join(tokens[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0]))
        + "]"
    )


def _is_b64(value: Any) -> bool:
    """True for ``{"b64": "..."}``, a DT_STRING value rather than outputs by name."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def name_outputs(
    value: Any, outputs: Mapping[str, TensorInfo] | None, output_filter: Sequence[str]
) -> dict[str, Any] | None:
    """The ``outputs`` value by output name; None when the signature can't tell.

    TF Serving answers an object by name when the signature has several outputs
    and the bare value when it has one; with no signature at hand, the bare
    value is named after a one-name ``output_filter``.
    """
    if isinstance(value, dict) and not _is_b64(value):
        if outputs is not None and set(value) != set(outputs):
            return None
        return dict(value)
    if outputs is not None:
        return {next(iter(outputs)): value} if len(outputs) == 1 else None
    return {output_filter[0]: value} if len(output_filter) == 1 else None


def decode_output(value: Any, info: TensorInfo | None) -> npt.NDArray[Any]:
    """One output as an array of the signature's dtype (numpy's guess without ``info``)."""
    dtype = info.dtype if info is not None else None
    try:
        if dtype == tensor_pb2.DT_STRING or (dtype is None and _leaf_is_text(value)):
            array = _string_array(value)
        else:
            array = np.asarray(value, dtype=_numpy_dtype(dtype))
    except (ValueError, TypeError) as exc:
        raise RpcFailure(
            grpc.StatusCode.DATA_LOSS, f"unreadable output: {exc}", local=True
        ) from None
    if array.size == 0 and info is not None:
        array = _empty_with_shape(array, info)
    return array


def _numpy_dtype(dtype: int | None) -> np.dtype[Any] | None:
    """The numpy dtype of a DataType (None: let numpy choose)."""
    if dtype is None:
        return None
    try:
        return np.dtype(codec.dtype_name(dtype))  # type: ignore[arg-type]
    except TypeError:
        return None


def _leaf_is_text(value: Any) -> bool:
    """Whether the first leaf of ``value`` is a string or a ``{"b64": ...}`` object."""
    while isinstance(value, list) and value:
        value = value[0]
    return isinstance(value, str | dict)


def _string_array(value: Any) -> npt.NDArray[Any]:
    """Nested strings / ``{"b64": ...}`` objects as an object array of bytes."""

    def convert(item: Any) -> Any:
        if isinstance(item, list):
            return [convert(element) for element in item]
        if _is_b64(item):
            return base64.b64decode(item["b64"] + "=" * (-len(item["b64"]) % 4), validate=True)
        if isinstance(item, str):
            return item.encode("utf-8")
        raise ValueError(f"expected a string, got {type(item).__name__}")

    converted = convert(value)
    if isinstance(converted, list):
        return np.array(converted, dtype=object)
    scalar = np.empty((), dtype=object)
    scalar[()] = converted
    return scalar


def _empty_with_shape(array: npt.NDArray[Any], info: TensorInfo) -> npt.NDArray[Any]:
    """An empty answer (``[]``) reshaped to the signature's inner dimensions when known."""
    if info.tensor_shape.unknown_rank:
        return array
    dims = [dim.size for dim in info.tensor_shape.dim]
    if len(dims) <= array.ndim or any(size < 0 for size in dims[array.ndim :]):
        return array
    return array.reshape([*array.shape, *dims[array.ndim :]])


def version_statuses(answer: Any) -> list[VersionStatus]:
    """``model_version_status`` entries as VersionStatus; KeyError/TypeError/ValueError if odd."""
    result = []
    for entry in answer["model_version_status"]:
        status = entry.get("status") or {}
        result.append(
            VersionStatus(
                version=int(entry["version"]),
                state=_state_name(entry["state"]),
                error_code=_error_code(status.get("error_code", 0)),
                error_message=str(status.get("error_message", "")),
            )
        )
    return result


def _state_name(state: Any) -> str:
    """A ModelVersionStatus state as its name (JSON gives the name; an int is accepted)."""
    if isinstance(state, int):
        return model_status_pb2.ModelVersionStatus.State.Name(state)
    return str(state)


def _error_code(code: Any) -> int:
    """A tensorflow.error.Code as its number (JSON gives its name, e.g. ``NOT_FOUND``)."""
    if isinstance(code, int):
        return code
    return int(grpc.StatusCode[str(code)].value[0])
