"""The REST ``:predict`` body: ``instances`` (row) or ``inputs`` (columnar) in, JSON out.

Follows TF Serving's FillPredictRequestFromJson() and MakeJsonFromTensors():
a row request answers ``{"predictions": [...]}`` (one entry per instance, an
object by output name when there are several outputs), a columnar one
``{"outputs": ...}`` (the bare value for a single output, else an object).
DT_STRING outputs whose name ends in ``_bytes`` are written as ``{"b64": ...}``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from adapter.modelserver.rest_json import TensorBuilder, invalid, is_b64_object, value_text
from adapter.modelserver.status import ServingError

ROW, COLUMNAR = "row", "columnar"
_NUMPY = orjson.OPT_SERIALIZE_NUMPY
# What TF Serving can write (AddSingleValueAndAdvance); anything else is an error.
_WRITABLE = {"float32", "float64", "float16", "int32", "int16", "int8", "uint8", "int64", "bool"}
_WRITABLE |= {"uint32", "uint64", "object"}

Builders = Mapping[str, TensorBuilder]


def parse_document(body: bytes) -> dict[str, Any]:
    """ParseJson(): a JSON object (NaN and Infinity allowed), or INVALID_ARGUMENT."""
    if not body.strip():
        raise invalid("JSON Parse error: The document is empty")
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:  # the standard parser also takes NaN/Infinity and integers over 64 bits
            document = json.loads(body)
        except json.JSONDecodeError as exc:
            raise invalid(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
        except (ValueError, RecursionError) as exc:
            raise invalid(f"JSON Parse error: {exc}") from None
    if not isinstance(document, dict):
        raise invalid(f"JSON Value: {value_text(document)} Is not object")
    return document


def signature_name(document: Mapping[str, Any]) -> str:
    """FillSignature(): the optional ``signature_name`` string ('' when absent)."""
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(
            f"JSON Value: {value_text(document)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


def request_tensors(
    document: Mapping[str, Any], builders: Builders
) -> tuple[str, dict[str, np.ndarray]]:
    """The request's format (ROW or COLUMNAR) and one array per signature input alias."""
    instances, inputs = document.get("instances"), document.get("inputs")
    if "instances" in document:
        if "inputs" in document:
            raise invalid(
                f"JSON Value: {value_text(document)} Not formatted correctly expecting only "
                "one of 'inputs' or 'instances' keys to exist "
            )
        if not isinstance(instances, list):
            raise invalid(
                f"JSON Value: {value_text(document)} Excepting 'instances' to be an list/array"
            )
        if not instances:
            raise invalid(f"JSON Value: {value_text(document)} No values in 'instances' array")
        return ROW, _from_instances(instances, builders)
    if "inputs" in document:
        return COLUMNAR, _from_inputs(inputs, builders)
    raise invalid("Missing 'inputs' or 'instances' key")


def _is_named(value: Any) -> bool:
    """An instance that names its inputs: an object that is not ``{"b64": ...}``."""
    return isinstance(value, dict) and not is_b64_object(value)


def _from_inputs(value: Any, builders: Builders) -> dict[str, np.ndarray]:
    """FillTensorMapFromInputsMap(): a bare value for one input, else an object by name."""
    if not _is_named(value):
        if len(builders) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple "
                "input tensors required as per tensorinfo_map"
            )
        alias = next(iter(builders))
        return {alias: builders[alias].build(value)}
    arrays: dict[str, np.ndarray] = {}
    for alias in sorted(builders):
        if alias not in value:
            raise invalid(f"Missing named input: {alias} in 'inputs' object.")
        arrays[alias] = builders[alias].build(value[alias])
    return arrays


def _from_instances(instances: list[Any], builders: Builders) -> dict[str, np.ndarray]:
    """FillTensorMapFromInstancesList(): every instance batched along a new first axis."""
    if not isinstance(instances[0], dict) and len(builders) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    named = _is_named(instances[0])
    columns: dict[str, list[np.ndarray]] = {}
    for index, item in enumerate(instances):
        if named != _is_named(item):
            got = "list" if named else "object"
            want = "object" if named else "value/list"
            raise invalid(f"Expecting {want} but got {got} at item {index} of input list")
        if not named:
            _add_item(columns, builders, sorted(builders)[0], item, index, keyed=False)
            continue
        for alias, value in item.items():
            _add_item(columns, builders, alias, value, index, keyed=True)
        if set(item) != set(builders):
            raise invalid(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{value_text(item)} keys must be equal to: {','.join(sorted(builders))}"
            )
    return {alias: np.stack(arrays) for alias, arrays in columns.items()}


def _add_item(
    columns: dict[str, list[np.ndarray]],
    builders: Builders,
    alias: str,
    value: Any,
    index: int,
    *,
    keyed: bool,
) -> None:
    """AddInstanceItem(): convert one instance's value; its shape must match the others'."""
    where = f"{index} key: {alias}" if keyed else f"{index}"
    try:
        if alias not in builders:
            raise invalid(f"JSON object: does not have named input: {alias}")
        array = builders[alias].build(value)
        previous = columns.get(alias)
        if previous:
            first = previous[0]
            if first.size != array.size:
                raise invalid(f"Expecting tensor size: {first.size} but got: {array.size}")
            if first.shape != array.shape:
                raise invalid(
                    f"Expecting shape {_shape_text(first.shape)} "
                    f"but got: {_shape_text(array.shape)}"
                )
    except ServingError as err:
        raise invalid(
            f"Failed to process element: {where} of 'instances' list. "
            f"Error: {err.code.name}: {err.message}"
        ) from None
    columns.setdefault(alias, []).append(array)


def _shape_text(shape: tuple[int, ...]) -> str:
    """ShapeToString(): ``[2,3]``."""
    return "[" + ",".join(str(size) for size in shape) + "]"


# --- outputs ---------------------------------------------------------------------


def predict_json(outputs: Mapping[str, np.ndarray], fmt: str) -> bytes:
    """MakeJsonFromTensors(): the response body for ``outputs`` in the request's format."""
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    for name in names:
        if outputs[name].dtype.name not in _WRITABLE:
            raise invalid(f"Failed to write JSON value for tensor type: {outputs[name].dtype}")
    if fmt == COLUMNAR:
        if len(names) == 1:
            return _document("outputs", _fragment(names[0], outputs[names[0]]))
        return _document("outputs", {n: _fragment(n, outputs[n]) for n in names})
    batch = -1
    for name in names:
        if outputs[name].ndim == 0:
            raise invalid(f"Tensor name: {name} has no shape information ")
        size = outputs[name].shape[0]
        if batch >= 0 and size != batch:
            raise invalid(
                f"Tensor name: {name} has inconsistent batch size: {size} expecting: {batch}"
            )
        batch = size
    rows: list[Any] = []
    for index in range(batch):
        row = {
            n: _fragment(n, outputs[n][index : index + 1].reshape(outputs[n].shape[1:]))
            for n in names
        }
        rows.append(row if len(names) > 1 else row[names[0]])
    return _document("predictions", rows)


def _document(key: str, value: Any) -> bytes:
    """``{key: value}`` with orjson fragments spliced in as they are."""
    return orjson.dumps({key: value})


def _fragment(name: str, array: np.ndarray) -> orjson.Fragment:
    """One output (or one instance of it) as JSON text, written like TF Serving."""
    if array.dtype == object:
        as_b64 = name.endswith("_bytes")
        flat = [_string_json(item, as_b64) for item in array.ravel().tolist()]
        return orjson.Fragment(orjson.dumps(_nest(flat, array.shape)))
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        tokens = [_decimal_token(value) for value in array.ravel()]
        return orjson.Fragment(_join(tokens, array.shape).encode())
    if array.ndim == 0:
        return orjson.Fragment(orjson.dumps(array[()], option=_NUMPY))
    return orjson.Fragment(orjson.dumps(np.ascontiguousarray(array), option=_NUMPY))


def _string_json(value: Any, as_b64: bool) -> Any:
    """A DT_STRING element: ``{"b64": ...}`` for ``*_bytes`` outputs, else text."""
    data = value if isinstance(value, bytes) else str(value).encode()
    if as_b64:
        return {"b64": base64.b64encode(data).decode("ascii")}
    return data.decode("utf-8", errors="replace")


def _nest(flat: list[Any], shape: tuple[int, ...]) -> Any:
    """Fold a flat list into nested lists of ``shape`` (a scalar for shape ``()``)."""
    if not shape:
        return flat[0]
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def _decimal_token(value: np.floating[Any]) -> str:
    """WriteDecimal(): shortest round-trip text; ``NaN``, ``Infinity``, ``-Infinity``."""
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return orjson.dumps(value, option=_NUMPY).decode()


def _join(tokens: list[str], shape: tuple[int, ...]) -> str:
    """Nested JSON array text of ``shape`` from flat number tokens."""
    if not shape:
        return tokens[0]
    step = len(tokens) // shape[0] if shape[0] else 0
    parts = (_join(tokens[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0]))
    return "[" + ",".join(parts) + "]"
