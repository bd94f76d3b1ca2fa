"""TF Serving's JSON tensor format (util/json_tensor.cc): JSON values to arrays and back.

Values are checked against the signature input's dtype with TF Serving's rules
and messages (``JSON Value: "a" Type: String is not of expected type: float``,
list sizes and nesting levels, lossless float conversion, ``{"b64": ...}`` for
DT_STRING). Arrays of numbers take a numpy fast path; only a value that may
break a rule (booleans, floats for an integer input, ragged lists, strings)
is walked element by element, so every error reads as TF Serving's.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import grpc
import numpy as np

from adapter.modelserver.status import ServingError

DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_STRING = 1, 2, 3, 4, 5, 6, 7
DT_INT64, DT_BOOL, DT_UINT32, DT_UINT64 = 9, 10, 22, 23

_INT32 = (-(2**31), 2**31 - 1)
# dtype -> (numpy dtype, predicate name, inclusive integer range or None)
_RULES: dict[int, tuple[str, str, tuple[int, int] | None]] = {
    DT_FLOAT: ("float32", "number", None),
    DT_DOUBLE: ("float64", "number", None),
    DT_INT32: ("int32", "int", _INT32),
    DT_INT16: ("int16", "int", _INT32),
    DT_INT8: ("int8", "int", _INT32),
    DT_UINT8: ("uint8", "int", _INT32),
    DT_INT64: ("int64", "int", (-(2**63), 2**63 - 1)),
    DT_UINT32: ("uint32", "int", (0, 2**32 - 1)),
    DT_UINT64: ("uint64", "int", (0, 2**64 - 1)),
    DT_BOOL: ("bool", "bool", None),
}
_LOSSLESS_INT = {DT_FLOAT: 2**24 - 1, DT_DOUBLE: 2**53 - 1}  # IsLosslessDecimal's kMaxInt
_FLOAT_MAX = {DT_FLOAT: float(np.finfo(np.float32).max), DT_DOUBLE: math.inf}


def invalid(message: str) -> ServingError:
    """An INVALID_ARGUMENT status with ``message``."""
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def value_text(value: Any) -> str:
    """JsonValueToString(): a value as TF Serving quotes it in messages (pretty, 4 spaces)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(value, indent=4, ensure_ascii=False)


def type_text(value: Any) -> str:
    """JsonTypeString(): Null, False, True, Object, Array, String or Number."""
    if value is None or isinstance(value, bool):
        return {None: "Null", False: "False", True: "True"}[value]
    names = {dict: "Object", list: "Array", str: "String"}
    return names.get(type(value), "Number")


def dense_shape(value: Any) -> list[int]:
    """GetDenseTensorShape(): the sizes along the first element of each nesting level."""
    shape: list[int] = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def is_b64_object(value: Any) -> bool:
    """True for ``{"b64": "<string>"}`` (exactly one key, a string value)."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def decode_b64(value: Any) -> bytes:
    """JsonDecodeBase64Object(): the bytes of a ``{"b64": ...}`` object."""
    if not is_b64_object(value):
        raise invalid(f"JSON Value: {value_text(value)} not formatted correctly for base64 data")
    text: str = value["b64"]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Unable to base64 decode") from None


class TensorBuilder:
    """Turns one JSON value into an array of a signature input's dtype, or raises TF's error.

    ``dtype`` is the TensorInfo's DataType enum value; ``dtype_name`` its
    DataTypeString() (``float``, ``uint8``, ...), used in messages.
    """

    def __init__(self, dtype: int, dtype_name: str, *, may_have_bools: bool = True) -> None:
        """``may_have_bools=False`` (no ``true``/``false`` in the body) enables the fast path."""
        self.dtype = dtype
        self.dtype_name = dtype_name
        self.may_have_bools = may_have_bools

    def build(self, value: Any) -> np.ndarray:
        """The array for ``value``: its dense shape, this builder's dtype."""
        shape = dense_shape(value)
        if self.dtype != DT_STRING and self.dtype in _RULES:
            fast = self._fast(value, shape)
            if fast is not None:
                return fast
        leaves: list[Any] = []
        self._fill(value, 0, shape, leaves)
        if self.dtype != DT_STRING and self.dtype not in _RULES:  # an empty list of them
            raise self._unsupported(value)
        if self.dtype == DT_STRING:
            array = np.empty(len(leaves), dtype=object)
            array[:] = leaves
            return array.reshape(shape)
        return self._cast(np.array(leaves, dtype=object)).reshape(shape)

    def _fast(self, value: Any, shape: list[int]) -> np.ndarray | None:
        """numpy's conversion when it provably follows TF Serving's rules, else None."""
        numpy_dtype, kind, bounds = _RULES[self.dtype]
        if kind != "bool" and self.may_have_bools:
            return None
        try:
            array = np.asarray(value)
        except (ValueError, TypeError, OverflowError):
            return None
        if list(array.shape) != shape:
            return None
        if array.size == 0:
            return np.zeros(shape, dtype=numpy_dtype)
        if kind == "bool":
            return array if array.dtype == np.bool_ else None
        if array.dtype.kind not in "iuf" or (kind == "int" and array.dtype.kind == "f"):
            return None
        low, high = array.min(), array.max()
        if bounds is not None and not bounds[0] <= low <= high <= bounds[1]:
            return None
        if kind == "number" and not self._lossless_array(array, low, high):
            return None
        return self._cast(array)

    def _lossless_array(self, array: np.ndarray, low: Any, high: Any) -> bool:
        """Whether every value converts without loss (ambiguous cases go the slow way)."""
        limit = _LOSSLESS_INT[self.dtype]
        if array.dtype.kind in "iu":
            return bool(-limit <= low and high <= limit)
        finite = array[np.isfinite(array)]
        # A larger value may be an integer token over kMaxInt, or out of float range.
        return bool(not finite.size or np.abs(finite).max() <= min(limit, _FLOAT_MAX[self.dtype]))

    def _cast(self, array: np.ndarray) -> np.ndarray:
        """Convert to the numpy dtype; small ints wrap like Tensor::FromProto's int_val copy."""
        numpy_dtype = _RULES[self.dtype][0]
        if _RULES[self.dtype][2] is _INT32:
            return array.astype(np.int64).astype(np.int32).astype(numpy_dtype)
        return array.astype(numpy_dtype)

    def _fill(self, value: Any, level: int, shape: list[int], out: list[Any]) -> None:
        """FillTensorProto(): walk the lists, checking sizes and levels, converting leaves."""
        rank = len(shape)
        if not isinstance(value, list):
            if level != rank:
                raise invalid(
                    f"JSON Value: {value_text(value)} found at incorrect level: {level + 1} "
                    f"in the JSON DOM. Expected at level: {rank}"
                )
            if isinstance(value, dict):
                if self.dtype != DT_STRING:
                    raise self._type_error(value)
                out.append(decode_b64(value))
            else:
                out.append(self._scalar(value))
            return
        if level >= rank:
            raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
        if len(value) != shape[level]:
            raise invalid(
                f"Encountered list at unexpected size: {len(value)} at level: {level} "
                f"expected size: {shape[level]}"
            )
        for item in value:
            self._fill(item, level + 1, shape, out)

    def _scalar(self, value: Any) -> Any:
        """AddValueToTensor(): one leaf, type-checked like rapidjson's Is*() predicates."""
        if self.dtype == DT_STRING:
            if not isinstance(value, str):
                raise self._type_error(value)
            return value.encode("utf-8", errors="surrogatepass")
        if self.dtype not in _RULES:
            raise self._unsupported(value)
        _, kind, bounds = _RULES[self.dtype]
        if kind == "bool":
            if not isinstance(value, bool):
                raise self._type_error(value)
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._type_error(value)
        if kind == "int":
            assert bounds is not None
            if not isinstance(value, int) or not bounds[0] <= value <= bounds[1]:
                raise self._type_error(value)
            return value
        if not self._lossless(value):
            target = "float" if self.dtype == DT_FLOAT else "double"
            raise invalid(
                f"Cannot convert JSON value: {value_text(value)} to {target} "
                "without loss of precision."
            )
        return value

    def _lossless(self, value: int | float) -> bool:
        """IsLosslessDecimal(): integer tokens up to 2^digits-1, decimals within range."""
        if isinstance(value, int) and -(2**63) <= value < 2**64:
            return abs(value) <= _LOSSLESS_INT[self.dtype]
        number = float(value)
        return not math.isfinite(number) or abs(number) <= _FLOAT_MAX[self.dtype]

    def _unsupported(self, value: Any) -> ServingError:
        """UNIMPLEMENTED for a dtype TF Serving's JSON reader has no conversion to."""
        return ServingError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"Conversion of JSON Value: {value_text(value)} to type: {self.dtype_name}",
        )

    def _type_error(self, value: Any) -> ServingError:
        """TypeError(): the value, its JSON type and the expected dtype."""
        return invalid(
            f"JSON Value: {value_text(value)} Type: {type_text(value)} "
            f"is not of expected type: {self.dtype_name}"
        )
