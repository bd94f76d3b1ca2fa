"""Image decode and resize for `adapter.imaging`; private, import that instead."""

import numpy as np
import numpy.typing as npt

__all__ = ["decode_resize", "probe"]

def decode_resize(
    data: bytes,
    width: int,
    height: int,
    *,
    resize: str,
    dtype: str,
    pad_value: int,
    max_bytes: int,
    max_width: int,
    max_height: int,
    max_pixels: int,
) -> tuple[npt.NDArray[np.uint8] | npt.NDArray[np.float32], int, int, float, float, float, float]:
    """Decodes a JPEG or PNG and resizes it to `width` x `height` RGB.

    Returns `(array, orig_width, orig_height, scale_x, scale_y, pad_x, pad_y)`;
    the array has shape `(height, width, 3)` and owns the Rust buffer.
    The GIL is released while decoding and resizing.
    """

def probe(
    data: bytes, *, max_bytes: int, max_width: int, max_height: int, max_pixels: int
) -> tuple[str, int, int]:
    """Reads the format and size from the header only: `(format, width, height)`."""
