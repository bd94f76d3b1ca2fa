"""Image bytes to model-input tensors: decode, resize, and map coordinates back.

The work happens in the Rust extension ``adapter._native`` (this module is its
only importer) with the GIL released. JPEG and PNG are decoded; the format is
sniffed from the magic bytes, never taken from a file name or content type.

Size limits (:class:`Limits`) are checked from the image header before any
pixel buffer is allocated. Bad images raise an :class:`ImageError` subclass
(a ``ValueError``); bad arguments from the caller raise a plain ``ValueError``
(or ``TypeError`` for a wrong type of ``data`` or ``limits``). A failure inside
the extension itself (a bug, never the input alone) raises ``RuntimeError``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from adapter import _native

__all__ = [
    "MAX_OUTPUT_SIDE",
    "CorruptImage",
    "DType",
    "ImageError",
    "ImageInfo",
    "ImageTensor",
    "ImageTooLarge",
    "Limits",
    "ResizeMode",
    "Transform",
    "UnsupportedImage",
    "decode_resize",
    "preprocess",
    "probe",
]

ResizeMode = Literal["stretch", "letterbox"]
"""``"stretch"``: scale each axis to fill the output exactly (aspect ratio not kept).
``"letterbox"``: scale uniformly to fit, centre, pad the rest with ``pad_value``."""

DType = Literal["uint8", "float32"]
"""Output element type; ``"float32"`` holds the same 0..255 values (no normalisation)."""

MAX_OUTPUT_SIDE = 16384
"""Largest output width or height :func:`preprocess` accepts."""

_RESIZE_MODES: tuple[str, ...] = get_args(ResizeMode)
_DTYPES: tuple[str, ...] = get_args(DType)


class ImageError(ValueError):
    """The bytes are not an image this service can use; the client's fault (HTTP 4xx)."""


class UnsupportedImage(ImageError):
    """Not a JPEG or PNG (including empty input), or a feature the decoder lacks."""


class CorruptImage(ImageError):
    """A JPEG or PNG that is truncated or malformed."""


class ImageTooLarge(ImageError):
    """The input or the size its header declares breaks a :class:`Limits` bound."""


def _check_int(name: str, value: object, low: int, high: int) -> int:
    """``value`` as an int if it is an integer in ``low..high``; ``ValueError`` otherwise."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]  # any __index__ will do
    except TypeError:
        number = None
    if number is None or isinstance(value, bool) or not low <= number <= high:
        raise ValueError(f"{name} must be an int between {low} and {high}, got {value!r}")
    return number


@dataclass(frozen=True)
class Limits:
    """Inclusive upper bounds on an input image, checked from its header before decoding.

    Defaults: ``max_bytes`` 32 MiB of encoded input; ``max_width`` and
    ``max_height`` 16384 pixels; ``max_pixels`` 64 000 000 (width x height).
    Every field must be a positive int (``ValueError`` otherwise).
    """

    max_bytes: int = 32 * 1024 * 1024
    max_width: int = 16384
    max_height: int = 16384
    max_pixels: int = 64_000_000

    def __post_init__(self) -> None:
        _check_int("max_bytes", self.max_bytes, 1, 2**64 - 1)
        _check_int("max_width", self.max_width, 1, 2**32 - 1)
        _check_int("max_height", self.max_height, 1, 2**32 - 1)
        _check_int("max_pixels", self.max_pixels, 1, 2**64 - 1)


@dataclass(frozen=True)
class Transform:
    """Maps model-input pixel coordinates to original-image pixel coordinates.

    ``x_orig = (x_model - pad_x) / scale_x`` and likewise for y. Coordinates
    are continuous (pixel ``i`` spans ``[i, i + 1)``). For ``"stretch"``,
    ``scale_x = out_width / width``, ``scale_y = out_height / height`` and no
    padding; for ``"letterbox"`` one scale serves both axes and ``pad_x``,
    ``pad_y`` are the exact (possibly fractional) left and top padding.
    """

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        """Maps the model-input point ``(x, y)`` to the original image."""
        return (x - self.pad_x) / self.scale_x, (y - self.pad_y) / self.scale_y


@dataclass(frozen=True)
class ImageTensor:
    """A model-input array and how it relates to the original image.

    ``array`` has shape ``(out_height, out_width, 3)``, RGB, C-contiguous,
    writable, dtype ``uint8`` or ``float32``. ``width`` and ``height`` are the
    original image's size.
    """

    array: npt.NDArray[np.uint8] | npt.NDArray[np.float32] = field(repr=False)
    width: int
    height: int
    transform: Transform


@dataclass(frozen=True)
class ImageInfo:
    """What an image header says: ``format`` (``"jpeg"`` or ``"png"``) and size in pixels."""

    format: str
    width: int
    height: int


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"data must be bytes, not {type(data).__name__}")


def preprocess(
    data: bytes,
    size: tuple[int, int],
    *,
    resize: ResizeMode = "stretch",
    dtype: DType = "uint8",
    pad_value: int = 0,
    limits: Limits = Limits(),
) -> ImageTensor:
    """Decodes a JPEG or PNG and resizes it to a model-input tensor.

    ``size`` is the output ``(width, height)``, each 1..16384; the array's
    shape is ``(height, width, 3)``, RGB. ``resize`` is ``"stretch"``
    (default) or ``"letterbox"``; ``dtype`` is ``"uint8"`` (default) or
    ``"float32"`` (same 0..255 values); ``pad_value`` (0..255, default 0)
    fills letterbox padding. Resampling is antialiased bilinear. Grayscale,
    palette and 16-bit images become 8-bit RGB; alpha is flattened onto white.
    ``limits`` defaults to :class:`Limits()`.

    Raises :class:`UnsupportedImage`, :class:`CorruptImage` or
    :class:`ImageTooLarge` for a bad image; a plain ``ValueError`` for a bad
    ``size``, ``resize``, ``dtype`` or ``pad_value``; ``TypeError`` if
    ``data`` is not bytes-like or ``limits`` is not a :class:`Limits`.
    """
    payload = _as_bytes(data)
    if not isinstance(size, tuple | list) or len(size) != 2:
        raise ValueError(f"size must be a (width, height) pair, got {size!r}")
    width = _check_int("size[0] (width)", size[0], 1, MAX_OUTPUT_SIDE)
    height = _check_int("size[1] (height)", size[1], 1, MAX_OUTPUT_SIDE)
    if resize not in _RESIZE_MODES:
        raise ValueError(f"resize must be one of {_RESIZE_MODES}, got {resize!r}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    pad = _check_int("pad_value", pad_value, 0, 255)
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a Limits, not {type(limits).__name__}")

    array, orig_w, orig_h, scale_x, scale_y, pad_x, pad_y = _native.decode_resize(
        payload,
        width,
        height,
        resize=resize,
        dtype=dtype,
        pad_value=pad,
        max_bytes=limits.max_bytes,
        max_width=limits.max_width,
        max_height=limits.max_height,
        max_pixels=limits.max_pixels,
    )
    return ImageTensor(
        array=array,
        width=orig_w,
        height=orig_h,
        transform=Transform(scale_x=scale_x, scale_y=scale_y, pad_x=pad_x, pad_y=pad_y),
    )


def decode_resize(
    data: bytes,
    size: tuple[int, int],
    *,
    resize: ResizeMode = "stretch",
    dtype: DType = "uint8",
    pad_value: int = 0,
    limits: Limits = Limits(),
) -> npt.NDArray[np.uint8] | npt.NDArray[np.float32]:
    """Same as :func:`preprocess` (same defaults and errors), returning only the array."""
    return preprocess(
        data, size, resize=resize, dtype=dtype, pad_value=pad_value, limits=limits
    ).array


def probe(data: bytes, *, limits: Limits = Limits()) -> ImageInfo:
    """Reads the format and size from the header only, checking ``limits``.

    Cheap (no pixel data is read), so a corrupt image body goes unnoticed; for
    models that take the original bytes. ``limits`` defaults to :class:`Limits()`.
    Raises :class:`UnsupportedImage`, :class:`CorruptImage` (broken header) or
    :class:`ImageTooLarge`.
    """
    payload = _as_bytes(data)
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a Limits, not {type(limits).__name__}")
    fmt, width, height = _native.probe(
        payload,
        max_bytes=limits.max_bytes,
        max_width=limits.max_width,
        max_height=limits.max_height,
        max_pixels=limits.max_pixels,
    )
    return ImageInfo(format=fmt, width=width, height=height)
