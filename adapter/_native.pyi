"""Image decode and resize for `adapter.imaging`; private, import that instead."""

import numpy as np
import numpy.typing as npt

__all__ = ["decode", "preprocess", "probe"]

_Item = tuple[str, int, int, int, float, float, float, float] | BaseException

def decode(
    data: bytes,
    *,
    background: tuple[int, int, int],
    max_bytes: int,
    max_width: int,
    max_height: int,
    max_pixels: int,
) -> tuple[npt.NDArray[np.uint8], tuple[str, int, int, int]]:
    """Decodes one image at full size, upright: `(array, (format, stored_width,
    stored_height, orientation))`, the array `(height, width, 3)` RGB uint8
    with alpha flattened onto `background`. The GIL is released while decoding.
    """

def preprocess(
    images: list[bytes],
    width: int,
    height: int,
    *,
    resize: str,
    shorter_side: int,
    filter: str,
    pad_value: int,
    background: tuple[int, int, int],
    color: str,
    layout: str,
    dtype: str,
    shift: list[float],
    scale: list[float],
    offset: list[float],
    max_bytes: int,
    max_width: int,
    max_height: int,
    max_pixels: int,
) -> tuple[npt.NDArray[np.uint8] | npt.NDArray[np.float32], list[_Item]]:
    """Decodes each image and writes it into one batch tensor.

    Returns `(array, items)`: the array has shape `(n, height, width, c)` or
    `(n, c, height, width)` and owns the Rust buffer; `items[i]` is either
    `(format, stored_width, stored_height, orientation, scale_x, scale_y,
    pad_x, pad_y)` or the exception for image `i` (its slot holds padding).
    The GIL is released while decoding and resizing.
    """

def probe(
    data: bytes, *, max_bytes: int, max_width: int, max_height: int, max_pixels: int
) -> tuple[str, int, int]:
    """Reads the format and size from the header only: `(format, width, height)`."""
