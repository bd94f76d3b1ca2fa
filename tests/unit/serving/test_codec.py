"""The tensor codec: arrays to TensorProto and back, every dtype the adapter meets."""

import numpy as np
import pytest

from adapter.serving import codec
from adapter.serving.protos import tensor_pb2

DT = tensor_pb2.DataType


@pytest.mark.parametrize(
    "dtype", ["uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "bool"]
)
def test_round_trip_through_tensor_content(dtype: str) -> None:
    array = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    proto = codec.to_tensor_proto(array)
    assert proto.tensor_content  # numeric tensors always travel as raw bytes
    assert not proto.float_val and not proto.int_val
    decoded = codec.to_ndarray(proto)
    assert decoded.dtype == array.dtype
    np.testing.assert_array_equal(decoded, array)


def test_big_endian_input_is_sent_little_endian() -> None:
    array = np.array([1.5, -2.0], dtype=">f4")
    proto = codec.to_tensor_proto(array)
    assert proto.tensor_content == np.array([1.5, -2.0], dtype="<f4").tobytes()


def test_non_contiguous_views_are_encoded_in_logical_order() -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]
    np.testing.assert_array_equal(codec.to_ndarray(codec.to_tensor_proto(array)), array)


def test_typed_float_values_are_read() -> None:
    proto = tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, float_val=[0.5, 1.5, 2.5, 3.5])
    proto.tensor_shape.dim.add(size=2)
    proto.tensor_shape.dim.add(size=2)
    np.testing.assert_array_equal(codec.to_ndarray(proto), [[0.5, 1.5], [2.5, 3.5]])


def test_a_single_typed_value_fills_the_shape() -> None:
    proto = tensor_pb2.TensorProto(dtype=DT.DT_INT64, int64_val=[7])
    proto.tensor_shape.dim.add(size=3)
    np.testing.assert_array_equal(codec.to_ndarray(proto), [7, 7, 7])


def test_half_values_are_bit_patterns() -> None:
    values = np.array([1.0, -0.5], dtype=np.float16)
    proto = tensor_pb2.TensorProto(dtype=DT.DT_HALF, half_val=values.view(np.uint16).tolist())
    proto.tensor_shape.dim.add(size=2)
    np.testing.assert_array_equal(codec.to_ndarray(proto), values)


def test_strings_round_trip() -> None:
    proto = codec.strings_to_tensor_proto([b"\xff\xd8jpeg", b""])
    assert proto.dtype == DT.DT_STRING
    assert list(codec.to_ndarray(proto)) == [b"\xff\xd8jpeg", b""]


def test_scalar_and_empty_tensors() -> None:
    scalar = tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, float_val=[3.0])
    assert codec.to_ndarray(scalar).shape == ()
    empty = codec.to_tensor_proto(np.zeros((0, 4), dtype=np.float32))
    assert codec.to_ndarray(empty).shape == (0, 4)


@pytest.mark.parametrize(
    "proto",
    [
        tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, tensor_content=b"\x00" * 7),
        tensor_pb2.TensorProto(dtype=DT.DT_COMPLEX64, tensor_content=b"\x00" * 8),
        tensor_pb2.TensorProto(
            dtype=DT.DT_FLOAT,
            float_val=[1.0, 2.0, 3.0],
            tensor_shape=tensor_pb2.TensorShapeProto(dim=[{"size": 2}]),
        ),
        tensor_pb2.TensorProto(
            dtype=DT.DT_FLOAT, tensor_shape=tensor_pb2.TensorShapeProto(unknown_rank=True)
        ),
    ],
    ids=["ragged-bytes", "unsupported-dtype", "too-many-values", "unknown-rank"],
)
def test_malformed_tensors_raise_a_typed_error(proto: tensor_pb2.TensorProto) -> None:
    with pytest.raises(codec.TensorDecodeError):
        codec.to_ndarray(proto)


def test_dtype_names_round_trip() -> None:
    for name in ("uint8", "float32", "int64", "string"):
        assert codec.dtype_name(codec.dtype_from_name(name)) == name
    with pytest.raises(ValueError, match="complex"):
        codec.dtype_from_name("complex")
