"""Image decode and resize for `adapter.imaging`, YOLO decoding and NMS for
`adapter.postprocess`; private, import those instead."""

from typing import final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ImageInfo",
    "Limits",
    "Placement",
    "Preprocessor",
    "YoloHead",
    "decode",
    "nms",
    "probe",
]

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
        upscale: bool = False,
    ) -> Preprocessor: ...
    def run(
        self, images: list[bytes]
    ) -> tuple[npt.NDArray[np.uint8] | npt.NDArray[np.float32], list[Placement | BaseException]]:
        """Decodes each image and writes it into one batch tensor.

        Returns `(array, items)`: the array has shape `(n, height, width, c)`
        or `(n, c, height, width)` and owns the Rust buffer; `items[i]` is the
        `Placement` of image `i` or its exception (its slot holds padding).
        """
    def run_one(
        self, data: bytes
    ) -> tuple[npt.NDArray[np.uint8] | npt.NDArray[np.float32], Placement]:
        """Decodes one image into an array of its own, `(1, height, width, c)` or
        `(1, c, height, width)`: for `resize="fit"`, the image's fitted size.
        Returns `(array, placement)`; a bad image raises its exception."""

@final
class YoloHead:
    """A YOLO head's layout, built once per model: `decode` turns one image's
    raw output into kept boxes, the GIL released, reading the buffer in place."""

    def __new__(
        cls, *, layout: str, classes: int, objectness: bool, normalized: bool
    ) -> YoloHead: ...
    def decode(
        self,
        output: npt.NDArray[np.float32],
        *,
        input_width: float,
        input_height: float,
        min_score: float,
        iou_threshold: float,
        max_results: int,
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """`(boxes, scores, classes)`: `[K, 4]` float32 corners `x0, y0, x1, y1`
        in input pixels, `[K]` float32 and `[K]` int64, best first. `output`
        is one image's C-contiguous float32 matrix (the batch axis dropped)."""

def nms(
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    classes: npt.NDArray[np.int64] | None,
    *,
    iou_threshold: float,
    max_results: int,
    min_score: float = ...,
) -> npt.NDArray[np.int64]:
    """Class-aware greedy non-maximum suppression, as `tf.image.non_max_suppression`
    decides it, per class: the indices kept (int64), best first. `boxes` is
    `[K, 4]` float32 opposite corners, `scores` `[K]` float32 (kept when at
    least `min_score`), `classes` `[K]` int64 or None (one class). The GIL is
    released."""

def decode(
    data: bytes, background: tuple[int, int, int], limits: Limits
) -> tuple[npt.NDArray[np.uint8], Placement]:
    """Decodes one image at full size, upright: `(array, placement)`, the array
    `(height, width, 3)` RGB uint8 with alpha flattened onto `background`, the
    placement's transform the identity. The GIL is released while decoding.
    """

def probe(data: bytes, limits: Limits) -> ImageInfo:
    """Reads the format and stored size from the header only."""
