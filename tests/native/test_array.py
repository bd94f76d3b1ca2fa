"""The array is a plain, writable, C-ordered NumPy array over the Rust buffer (no copy)."""

from __future__ import annotations

import gc
import sys

import numpy as np
import pytest

from adapter import imaging
from tests.native.images import encode, scene

DATA = encode(scene(400, 300), "JPEG")


@pytest.mark.parametrize("resize", ["stretch", "letterbox"])
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_array_layout(dtype: imaging.DType, resize: imaging.ResizeMode) -> None:
    array = imaging.decode_resize(DATA, (224, 160), dtype=dtype, resize=resize)
    assert isinstance(array, np.ndarray)
    assert array.shape == (160, 224, 3)
    assert array.dtype == np.dtype(dtype)
    assert array.flags.c_contiguous and array.flags.aligned
    assert array.flags.writeable
    assert array.strides == (224 * 3 * array.itemsize, 3 * array.itemsize, array.itemsize)


def test_array_wraps_the_rust_buffer_without_a_copy() -> None:
    """rust-numpy hands over the Vec: NumPy does not own the data, a Rust container does."""
    array = imaging.decode_resize(DATA, (64, 64))
    assert not array.flags.owndata
    # A single image is a view of a one-image batch array, which wraps the Vec.
    batch = array.base
    assert isinstance(batch, np.ndarray) and batch.shape == (1, 64, 64, 3)
    assert not batch.flags.owndata
    base = batch.base
    assert base is not None and not isinstance(base, np.ndarray)
    assert type(base).__name__ == "PySliceContainer"
    # The container is referenced only by the batch array, so it goes when the arrays do.
    assert sys.getrefcount(base) == 3  # `base`, `batch.base`, getrefcount's argument


def test_array_is_writable_and_independent() -> None:
    first = imaging.decode_resize(DATA, (32, 32))
    second = imaging.decode_resize(DATA, (32, 32))
    assert not np.shares_memory(first, second)
    first[:] = 0
    first += 3
    assert (first == 3).all()
    assert np.array_equal(second, imaging.decode_resize(DATA, (32, 32)))


def test_array_survives_its_producer() -> None:
    array = imaging.preprocess(DATA, (48, 48)).array
    gc.collect()
    assert int(array.sum()) > 0
    view = array[::2, ::2]
    del array
    gc.collect()
    assert view.shape == (24, 24, 3) and int(view.sum()) > 0
