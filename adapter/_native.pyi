"""Image decode and resize for `adapter.imaging`; private, import that instead."""

from typing import final

import numpy as np
import numpy.typing as npt

__all__ = ["ImageInfo", "Limits", "Placement", "Preprocessor", "decode", "probe"]

@final
class Limits:
    """The limits every call checks, built once; each defaults to the crate's
    `Limits::DEFAULT`, the one place the defaults are written."""

    def __new__(
        cls,
        *,
        max_bytes: int = ...,
        max_width: int = ...,
        max_height: int = ...,
        max_pixels: int = ...,
    ) -> Limits: ...
    def __eq__(self, value: object, /) -> bool: ...
    @property
    def max_bytes(self) -> int: ...
    @property
    def max_width(self) -> int: ...
    @property
    def max_height(self) -> int: ...
    @property
    def max_pixels(self) -> int: ...

@final
class Placement:
    """Where one image went: format, size as stored and as displayed (after the
    EXIF orientation), and the transform back, `x = (x_tensor - pad_x) / scale_x`."""

    @property
    def format(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def stored_width(self) -> int: ...
    @property
    def stored_height(self) -> int: ...
    @property
    def orientation(self) -> int: ...
    @property
    def scale_x(self) -> float: ...
    @property
    def scale_y(self) -> float: ...
    @property
    def pad_x(self) -> float: ...
    @property
    def pad_y(self) -> float: ...

@final
class ImageInfo:
    """What a header says: the format and the stored size in pixels."""

    @property
    def format(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...

@final
class Preprocessor:
    """A compiled preprocessing: the spec and limits parsed once, run on every
    request with the GIL released."""

    def __new__(
        cls,
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
        limits: Limits,
    ) -> Preprocessor: ...
    def run(
        self, images: list[bytes]
    ) -> tuple[npt.NDArray[np.uint8] | npt.NDArray[np.float32], list[Placement | BaseException]]:
        """Decodes each image and writes it into one batch tensor.

        Returns `(array, items)`: the array has shape `(n, height, width, c)`
        or `(n, c, height, width)` and owns the Rust buffer; `items[i]` is the
        `Placement` of image `i` or its exception (its slot holds padding).
        """

def decode(
    data: bytes, background: tuple[int, int, int], limits: Limits
) -> tuple[npt.NDArray[np.uint8], Placement]:
    """Decodes one image at full size, upright: `(array, placement)`, the array
    `(height, width, 3)` RGB uint8 with alpha flattened onto `background`, the
    placement's transform the identity. The GIL is released while decoding.
    """

def probe(data: bytes, limits: Limits) -> ImageInfo:
    """Reads the format and stored size from the header only."""
