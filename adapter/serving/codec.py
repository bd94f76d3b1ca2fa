"""Tensor codec: numpy arrays <-> TensorProto, without TensorFlow.

Numeric tensors are always *sent* as ``tensor_content`` (raw little-endian
bytes, one memcpy); responses are *read* whether the server filled
``tensor_content`` or the typed ``*_val`` fields, as TF Serving may do either.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from adapter.serving.protos import tensor_pb2

DT = tensor_pb2.DataType

# DataType -> (numpy dtype, typed repeated field holding the values).

_NUMERIC: dict[DT, tuple[np.dtype[np.generic], str]] = {
    DT.DT_FLOAT: (np.dtype("<f4"), "float_val"),
    DT.DT_DOUBLE: (np.dtype("<f8"), "double_val"),
    DT.DT_HALF: (np.dtype("<f2"), "half_val"),
    DT.DT_INT8: (np.dtype("i1"), "int_val"),
    DT.DT_INT16: (np.dtype("<i2"), "int_val"),
    DT.DT_INT32: (np.dtype("<i4"), "int_val"),
    DT.DT_INT64: (np.dtype("<i8"), "int64_val"),
    DT.DT_UINT8: (np.dtype("u1"), "int_val"),
    DT.DT_UINT16: (np.dtype("<u2"), "int_val"),
    DT.DT_UINT32: (np.dtype("<u4"), "uint32_val"),
    DT.DT_UINT64: (np.dtype("<u8"), "uint64_val"),
    DT.DT_BOOL: (np.dtype("?"), "bool_val"),
}
_BY_NUMPY: dict[np.dtype[np.generic], DT] = {
    np_dtype.newbyteorder("="): dt for dt, (np_dtype, _) in _NUMERIC.items()
}
_DTYPE_NAMES: dict[str, DT] = {
    "float32": DT.DT_FLOAT,
    "float64": DT.DT_DOUBLE,
    "float16": DT.DT_HALF,
    "int8": DT.DT_INT8,
    "int16": DT.DT_INT16,
    "int32": DT.DT_INT32,
    "int64": DT.DT_INT64,
    "uint8": DT.DT_UINT8,
    "uint16": DT.DT_UINT16,
    "uint32": DT.DT_UINT32,
    "uint64": DT.DT_UINT64,
    "bool": DT.DT_BOOL,
    "string": DT.DT_STRING,
}


class TensorDecodeError(ValueError):
    """A TensorProto from the backend could not be turned into an array."""


def dtype_from_name(name: str) -> DT:
    """Return the DT for a registry dtype name such as ``"uint8"``."""
    try:
        return _DTYPE_NAMES[name]
    except KeyError:
        raise ValueError(f"unsupported dtype {name!r}") from None


def dtype_name(dtype: DT) -> str:
    """Return the registry name of a DT (``DT_FLOAT`` -> ``"float32"``)."""
    for name, value in _DTYPE_NAMES.items():
        if value == dtype:
            return name
    return DT.Name(dtype) if dtype in DT.values() else f"DT_{dtype}"


def _shape_proto(shape: Sequence[int]) -> tensor_pb2.TensorShapeProto:
    return tensor_pb2.TensorShapeProto(
        dim=[tensor_pb2.TensorShapeProto.Dim(size=int(size)) for size in shape]
    )


def to_tensor_proto(array: npt.NDArray[np.generic]) -> tensor_pb2.TensorProto:
    """Encode a numeric array as ``tensor_content`` in little-endian order."""
    native = array.dtype.newbyteorder("=")
    dtype = _BY_NUMPY.get(native)
    if dtype is None:
        raise ValueError(f"unsupported array dtype {array.dtype}")
    wire = np.ascontiguousarray(array, dtype=_NUMERIC[dtype][0])
    return tensor_pb2.TensorProto(
        dtype=dtype,
        tensor_shape=_shape_proto(array.shape),
        tensor_content=wire.tobytes(),
    )


def strings_to_tensor_proto(values: Sequence[bytes]) -> tensor_pb2.TensorProto:
    """Encode byte strings as a 1-D DT_STRING tensor (one element per value)."""
    return tensor_pb2.TensorProto(
        dtype=DT.DT_STRING, tensor_shape=_shape_proto([len(values)]), string_val=list(values)
    )


def _shape(proto: tensor_pb2.TensorProto) -> tuple[int, ...]:
    if proto.tensor_shape.unknown_rank:
        raise TensorDecodeError("tensor has unknown rank")
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise TensorDecodeError(f"tensor has a negative dimension: {shape}")
    return shape


def _fill(values: npt.NDArray[np.generic], shape: tuple[int, ...]) -> npt.NDArray[np.generic]:
    count = int(np.prod(shape, dtype=np.int64))
    if values.size == count:
        return values.reshape(shape)
    # TensorFlow's make_tensor_proto may send one value (or a prefix) and
    # let the last one fill the rest of the shape.
    if 0 < values.size < count:
        return np.concatenate([values, np.repeat(values[-1:], count - values.size)]).reshape(shape)
    raise TensorDecodeError(f"{values.size} values do not fill shape {shape}")


def to_ndarray(proto: tensor_pb2.TensorProto) -> npt.NDArray[np.generic]:
    """Decode a TensorProto from ``tensor_content`` or the typed ``*_val`` fields."""
    shape = _shape(proto)
    if proto.dtype == DT.DT_STRING:
        return _fill(np.array(list(proto.string_val), dtype=object), shape)
    if proto.dtype not in _NUMERIC:
        raise TensorDecodeError(f"unsupported tensor dtype {dtype_name(proto.dtype)}")
    np_dtype, field = _NUMERIC[proto.dtype]
    if proto.tensor_content:
        if len(proto.tensor_content) % np_dtype.itemsize:
            raise TensorDecodeError("tensor_content is not a whole number of elements")
        values = np.frombuffer(proto.tensor_content, dtype=np_dtype)
        return _fill(values, shape).astype(np_dtype.newbyteorder("="), copy=False)
    typed = getattr(proto, field)
    if proto.dtype == DT.DT_HALF:
        # half_val holds the IEEE-754 binary16 bit patterns in int32 slots.
        values = np.array(typed, dtype=np.uint16).view(np.float16)
    else:
        values = np.array(typed, dtype=np_dtype.newbyteorder("="))
    if values.size == 0 and int(np.prod(shape, dtype=np.int64)) == 0:
        return values.reshape(shape)
    return _fill(values, shape)
