"""Image bytes to model-input tensors: decode, resize, and map coordinates back.

The work happens in the Rust extension ``adapter._native`` (this module is its
only importer) with the GIL released. JPEG (baseline, progressive, grayscale,
CMYK/YCCK), PNG (every bit depth and colour type, interlaced), WebP (lossy,
lossless, alpha), GIF and BMP (first frame) are decoded; the format is sniffed
from the bytes, never taken from a file name or content type. JPEG goes
through libjpeg-turbo, shrunk in the DCT domain (1/2, 1/4, 1/8) when the
output needs far fewer pixels than the upload has.

EXIF orientation is applied: tensors, sizes and :class:`Transform` all refer
to the image as displayed. :class:`Preprocessing` says how an image becomes a
tensor (size, fit, filter, channels, layout, dtype, normalization); it is
validated once and reused for every request.

Size limits (:class:`Limits`) are checked from the image header before any
pixel buffer is allocated. Bad images raise an :class:`ImageError` subclass
(a ``ValueError``); bad arguments from the caller raise a plain ``ValueError``
(or ``TypeError`` for a wrong type of ``data`` or ``limits``). A failure inside
the extension itself (a bug, never the input alone) raises ``RuntimeError``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from adapter import _native

__all__ = [
    "MAX_OUTPUT_SIDE",
    "Batch",
    "Color",
    "CorruptImage",
    "DType",
    "EmptyImage",
    "Filter",
    "ImageError",
    "ImageInfo",
    "ImageTensor",
    "ImageTooLarge",
    "Layout",
    "Limits",
    "Preprocessing",
    "Preprocessor",
    "ResizeMode",
    "Transform",
    "UnsupportedImage",
    "decode",
    "decode_resize",
    "preprocess",
    "preprocess_batch",
    "probe",
]

ResizeMode = Literal["stretch", "letterbox", "crop", "resize_shorter_crop", "fit"]
"""``"stretch"``: scale each axis to fill the output exactly (aspect ratio not kept).
``"letterbox"``: scale uniformly to fit, centre, pad the rest with ``pad_value``.
``"crop"``: scale uniformly to cover, keep the centre (crop to the output's aspect).
``"resize_shorter_crop"``: scale the shorter side to ``shorter_side``, keep the centre.
``"fit"``: scale uniformly so the longer side is at most ``max_side``, no padding:
each image keeps its aspect and so gets its own size (never enlarged unless
``upscale``); for models whose input takes any height and width."""

Filter = Literal["bilinear", "area", "lanczos"]
"""Antialiased resampling: Pillow's ``BILINEAR``, ``BOX`` (area average, OpenCV's
``INTER_AREA``) and ``LANCZOS``."""

Color = Literal["rgb", "bgr", "gray"]
"""Output channels: RGB, BGR, or one luma channel (Pillow's ``convert("L")``)."""

Layout = Literal["nhwc", "nchw"]
"""Channel axis last (TensorFlow) or first (PyTorch, ONNX); a single image drops ``n``."""

DType = Literal["uint8", "float32"]
"""Output element type; ``"float32"`` holds 0..255 values unless normalized."""

MAX_OUTPUT_SIDE = 16384
"""Largest output width or height."""

SHORTER_SIDE_RATIO = 256 / 224
"""Default ``shorter_side`` over the output's larger side (ImageNet's 256 for 224)."""

_RESIZE_MODES: tuple[str, ...] = get_args(ResizeMode)
_FILTERS: tuple[str, ...] = get_args(Filter)
_COLORS: tuple[str, ...] = get_args(Color)
_LAYOUTS: tuple[str, ...] = get_args(Layout)
_DTYPES: tuple[str, ...] = get_args(DType)

Channels = float | tuple[float, ...]
"""One value for every channel, or one per output channel."""

_DEFAULT_LIMITS = _native.Limits()
"""The extension's defaults, the one place they are written."""


class ImageError(ValueError):
    """The bytes are not an image this service can use; the client's fault (HTTP 4xx)."""


class UnsupportedImage(ImageError):
    """Not a JPEG, PNG, WebP, GIF or BMP, or a feature the decoder lacks."""


class EmptyImage(UnsupportedImage):
    """No bytes at all: nothing to sniff a format from."""


class CorruptImage(ImageError):
    """An image that is truncated or malformed."""


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

    Defaults (the extension's, written once in ``rust_ext/src/limits.rs``):
    ``max_bytes`` 20 MiB of encoded input; ``max_width`` and ``max_height``
    16384 pixels; ``max_pixels`` 64 000 000 (width x height). Every field must
    be a positive int (``ValueError`` otherwise).
    """

    max_bytes: int = _DEFAULT_LIMITS.max_bytes
    max_width: int = _DEFAULT_LIMITS.max_width
    max_height: int = _DEFAULT_LIMITS.max_height
    max_pixels: int = _DEFAULT_LIMITS.max_pixels
    _compiled: _native.Limits = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = _native.Limits(
            max_bytes=_check_int("max_bytes", self.max_bytes, 1, 2**64 - 1),
            max_width=_check_int("max_width", self.max_width, 1, 2**32 - 1),
            max_height=_check_int("max_height", self.max_height, 1, 2**32 - 1),
            max_pixels=_check_int("max_pixels", self.max_pixels, 1, 2**64 - 1),
        )
        object.__setattr__(self, "_compiled", compiled)


@dataclass(frozen=True)
class Transform:
    """Maps model-input pixel coordinates to original-image pixel coordinates.

    ``x_orig = (x_model - pad_x) / scale_x`` and likewise for y, in the image
    as displayed (after EXIF orientation). Coordinates are continuous (pixel
    ``i`` spans ``[i, i + 1)``). For ``"stretch"``, ``scale_x = out_width /
    width``, ``scale_y = out_height / height`` and no padding; the other modes
    use one scale for both axes, and ``pad_x``, ``pad_y`` are the exact
    (possibly fractional) left and top padding: negative when cropping.
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

    ``array`` has the :class:`Preprocessing`'s shape and dtype (C-contiguous,
    writable; in a :class:`Batch`, a view of the batch array). ``width`` and
    ``height`` are the original image's size as displayed, after the EXIF
    ``orientation`` (1..8, 1 when absent) was applied, as the extension
    reports it; ``format`` is ``"jpeg"``, ``"png"``, ``"webp"``, ``"gif"`` or ``"bmp"``.
    """

    array: npt.NDArray[np.uint8] | npt.NDArray[np.float32] = field(repr=False)
    format: str
    width: int
    height: int
    orientation: int
    transform: Transform

    @classmethod
    def _placed(
        cls,
        array: npt.NDArray[np.uint8] | npt.NDArray[np.float32],
        placement: _native.Placement,
    ) -> ImageTensor:
        return cls(
            array=array,
            format=placement.format,
            width=placement.width,
            height=placement.height,
            orientation=placement.orientation,
            transform=Transform(
                scale_x=placement.scale_x,
                scale_y=placement.scale_y,
                pad_x=placement.pad_x,
                pad_y=placement.pad_y,
            ),
        )


@dataclass(frozen=True)
class Batch:
    """Several images in one contiguous array ``(n, *shape)``, in request order.

    ``items[i]`` is the :class:`ImageTensor` of image ``i`` (its ``array`` a
    view of ``array[i]``) or, if that image failed, its :class:`ImageError`;
    a failed image's slot holds padding, so the batch can still be sent whole.
    """

    array: npt.NDArray[np.uint8] | npt.NDArray[np.float32] = field(repr=False)
    items: tuple[ImageTensor | ImageError, ...]


@dataclass(frozen=True)
class ImageInfo:
    """What an image header says: ``format`` and the stored size in pixels
    (before any EXIF orientation)."""

    format: str
    width: int
    height: int


def _as_bytes(data: object) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"data must be bytes, not {type(data).__name__}")


def _choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _per_channel(name: str, value: Channels, channels: int) -> tuple[float, ...]:
    """``value`` as ``channels`` finite floats; ``ValueError`` naming ``name`` otherwise."""
    values = (value,) * channels if isinstance(value, int | float) else tuple(value)
    if len(values) != channels or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values
    ):
        raise ValueError(
            f"{name} must be a finite number or {channels} finite numbers, got {value!r}"
        )
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes a model input; validated on creation (``ValueError``).

    - ``size``: output ``(width, height)``, each 1..16384; for ``"fit"``, the
      bound ``(max_side, max_side)`` (:attr:`max_side`).
    - ``resize``: a :data:`ResizeMode` (default ``"stretch"``); ``shorter_side``
      is for ``"resize_shorter_crop"`` only, at least the larger output side,
      by default ``round(max(size) * 256 / 224)`` (256 for 224). ``upscale``
      is for ``"fit"`` only: enlarge images smaller than ``max_side`` too.
    - ``filter``: a :data:`Filter` (default ``"bilinear"``).
    - ``pad_value``: 0..255, every channel of the letterbox padding.
    - ``background``: RGB that transparent pixels are flattened onto (white).
    - ``color``, ``layout``, ``dtype``: see :data:`Color`, :data:`Layout`, :data:`DType`.
    - Normalization, ``float32`` only, per output channel (one number serves
      all): ``mean`` and ``std`` give ``(v - mean) / std``; ``scale`` and
      ``offset`` give ``v * scale + offset``; ``v`` is the 0..255 value. The
      two forms are exclusive; padding is normalized like any pixel.
    """

    size: tuple[int, int]
    resize: ResizeMode = "stretch"
    filter: Filter = "bilinear"
    pad_value: int = 0
    shorter_side: int | None = None
    upscale: bool = False
    background: tuple[int, int, int] = (255, 255, 255)
    color: Color = "rgb"
    layout: Layout = "nhwc"
    dtype: DType = "uint8"
    mean: Channels | None = None
    std: Channels | None = None
    scale: Channels | None = None
    offset: Channels | None = None
    _native_args: dict[str, object] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        size = self.size
        if not isinstance(size, tuple | list) or len(size) != 2:
            raise ValueError(f"size must be a (width, height) pair, got {size!r}")
        width = _check_int("size[0] (width)", size[0], 1, MAX_OUTPUT_SIDE)
        height = _check_int("size[1] (height)", size[1], 1, MAX_OUTPUT_SIDE)
        object.__setattr__(self, "size", (width, height))
        resize = _choice("resize", self.resize, _RESIZE_MODES)
        _choice("filter", self.filter, _FILTERS)
        _choice("color", self.color, _COLORS)
        _choice("layout", self.layout, _LAYOUTS)
        dtype = _choice("dtype", self.dtype, _DTYPES)
        pad = _check_int("pad_value", self.pad_value, 0, 255)
        background = self.background
        if not isinstance(background, tuple | list) or len(background) != 3:
            raise ValueError(f"background must be an (r, g, b) triple, got {background!r}")
        rgb = tuple(_check_int("background", v, 0, 255) for v in background)
        object.__setattr__(self, "background", rgb)

        larger = max(width, height)
        shorter = 0
        if resize == "resize_shorter_crop":
            default = round(larger * SHORTER_SIDE_RATIO)
            given = default if self.shorter_side is None else self.shorter_side
            shorter = _check_int("shorter_side", given, larger, 16 * MAX_OUTPUT_SIDE)
        elif self.shorter_side is not None:
            raise ValueError("shorter_side is only for resize='resize_shorter_crop'")
        if resize == "fit" and width != height:
            raise ValueError(f"resize='fit' takes size (max_side, max_side), got {size!r}")
        if not isinstance(self.upscale, bool) or (self.upscale and resize != "fit"):
            raise ValueError("upscale is True or False, and only for resize='fit'")

        channels = self.channels
        shift, scale, offset = self._normalization(dtype, channels)
        object.__setattr__(
            self,
            "_native_args",
            {
                "resize": resize,
                "shorter_side": shorter,
                "filter": self.filter,
                "pad_value": pad,
                "background": rgb,
                "color": self.color,
                "layout": self.layout,
                "dtype": dtype,
                "shift": list(shift),
                "scale": list(scale),
                "offset": list(offset),
            },
        )

    def _normalization(self, dtype: str, channels: int) -> tuple[tuple[float, ...], ...]:
        """Per-channel ``(shift, scale, offset)`` for the extension, which computes
        ``(v - shift) * scale + offset`` in double precision: identity unless normalized."""
        mean_std = self.mean is not None or self.std is not None
        scale_offset = self.scale is not None or self.offset is not None
        if (mean_std or scale_offset) and dtype != "float32":
            raise ValueError("normalization (mean/std, scale/offset) needs dtype='float32'")
        if mean_std and scale_offset:
            raise ValueError("give mean/std or scale/offset, not both")
        if mean_std:
            if self.mean is None or self.std is None:
                raise ValueError("mean and std go together")
            mean = _per_channel("mean", self.mean, channels)
            std = _per_channel("std", self.std, channels)
            if any(s == 0 for s in std):
                raise ValueError(f"std must not be zero, got {self.std!r}")
            return mean, tuple(1 / s for s in std), (0.0,) * channels
        scale = _per_channel("scale", 1.0 if self.scale is None else self.scale, channels)
        offset = _per_channel("offset", 0.0 if self.offset is None else self.offset, channels)
        return (0.0,) * channels, scale, offset

    @property
    def max_side(self) -> int:
        """The longest output side: ``max(size)``; for ``"fit"`` the bound of each image."""
        return max(self.size)

    @property
    def fixed_size(self) -> bool:
        """Whether every image becomes a tensor of ``size`` (all but ``"fit"``)."""
        return self.resize != "fit"

    @property
    def channels(self) -> int:
        """1 for ``"gray"``, else 3."""
        return 1 if self.color == "gray" else 3

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's array shape: ``(height, width, channels)``, or channels first."""
        width, height = self.size
        if self.layout == "nchw":
            return (self.channels, height, width)
        return (height, width, self.channels)

    def compile(self, limits: Limits = Limits()) -> Preprocessor:
        """This preprocessing bound to ``limits``: what runs on every request
        (``TypeError`` if ``limits`` is not a :class:`Limits`)."""
        return Preprocessor(self, limits)

    def run(self, data: bytes, limits: Limits = Limits()) -> ImageTensor:
        """Decodes ``data`` into one tensor; see :meth:`Preprocessor.run`."""
        return self.compile(limits).run(data)

    def run_batch(self, images: Sequence[bytes], limits: Limits = Limits()) -> Batch:
        """Decodes ``images`` into one batch; see :meth:`Preprocessor.run_batch`."""
        return self.compile(limits).run_batch(images)


@dataclass(frozen=True)
class Preprocessor:
    """A :class:`Preprocessing` compiled with its :class:`Limits`, made once per model
    (by :meth:`Preprocessing.compile`) and reused for every request: the
    extension parses the spec once, not on every call."""

    preprocessing: Preprocessing
    limits: Limits
    _compiled: _native.Preprocessor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        width, height = self.preprocessing.size
        compiled = _native.Preprocessor(
            width,
            height,
            **self.preprocessing._native_args,  # type: ignore[arg-type]  # validated
            limits=_compiled_limits(self.limits),
            upscale=self.preprocessing.upscale,
        )
        object.__setattr__(self, "_compiled", compiled)

    def run(self, data: bytes) -> ImageTensor:
        """Decodes ``data`` into one tensor; raises the :class:`ImageError` if it fails.

        For ``"fit"`` the tensor has the image's own fitted size.
        """
        array, placement = self._compiled.run_one(_as_bytes(data))
        return ImageTensor._placed(array[0], placement)

    def run_each(self, images: Sequence[bytes]) -> list[ImageTensor | ImageError]:
        """Decodes each image into a tensor of its own (any resize mode, ``"fit"`` too):
        its :class:`ImageTensor`, or the :class:`ImageError` it failed with."""
        results: list[ImageTensor | ImageError] = []
        for data in images:
            try:
                results.append(self.run(data))
            except ImageError as exc:
                results.append(exc)
        return results

    def run_batch(self, images: Sequence[bytes]) -> Batch:
        """Decodes ``images`` into one ``(n, *shape)`` array; per-image failures are
        reported in :attr:`Batch.items` (``ValueError`` for an empty batch, or
        for ``"fit"``, which sizes each image: use :meth:`run_each`)."""
        payloads = [_as_bytes(data) for data in images]
        if not payloads:
            raise ValueError("images must not be empty")
        if not self.preprocessing.fixed_size:
            raise ValueError("resize='fit' gives each image its own size: use run_each")
        array, results = self._compiled.run(payloads)
        items = tuple(
            result if isinstance(result, BaseException) else ImageTensor._placed(array[i], result)
            for i, result in enumerate(results)
        )
        return Batch(array=array, items=items)  # type: ignore[arg-type]  # only ImageErrors


def _compiled_limits(limits: Limits) -> _native.Limits:
    """The extension's object for ``limits`` (``TypeError`` if not a :class:`Limits`)."""
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a Limits, not {type(limits).__name__}")
    return limits._compiled


def preprocess(
    data: bytes, size: tuple[int, int], *, limits: Limits = Limits(), **options: object
) -> ImageTensor:
    """Decodes one image into a model-input tensor.

    ``size`` is the output ``(width, height)``; ``options`` are the other
    :class:`Preprocessing` fields (bad ones raise ``ValueError``). Raises
    :class:`UnsupportedImage`, :class:`CorruptImage` or :class:`ImageTooLarge`
    for a bad image; ``TypeError`` if ``data`` is not bytes-like or ``limits``
    is not a :class:`Limits`. Build a :class:`Preprocessing` once to skip the
    validation on every call.
    """
    return Preprocessing(size, **options).run(data, limits)  # type: ignore[arg-type]


def preprocess_batch(
    images: Sequence[bytes], size: tuple[int, int], *, limits: Limits = Limits(), **options: object
) -> Batch:
    """Decodes several images into one batch array; see :meth:`Preprocessing.run_batch`."""
    return Preprocessing(size, **options).run_batch(images, limits)  # type: ignore[arg-type]


def decode_resize(
    data: bytes,
    size: tuple[int, int],
    *,
    resize: ResizeMode = "stretch",
    dtype: DType = "uint8",
    limits: Limits = Limits(),
    **options: object,
) -> npt.NDArray[np.uint8] | npt.NDArray[np.float32]:
    """Decodes and resizes one image, returning only the array.

    For scripts and benchmarks: ``size`` is ``(width, height)``, the result
    ``(height, width, channels)`` (``layout="nchw"`` aside); ``options`` are
    the other :class:`Preprocessing` fields. Errors as :func:`preprocess`.
    """
    return preprocess(data, size, resize=resize, dtype=dtype, limits=limits, **options).array


def decode(
    data: bytes,
    *,
    limits: Limits = Limits(),
    background: tuple[int, int, int] = (255, 255, 255),
) -> ImageTensor:
    """Decodes one image at its own size, turned upright by its EXIF orientation.

    The frame every :class:`Transform` maps into, for drawing results on:
    ``array`` is ``(height, width, 3)`` RGB uint8 (``width`` x ``height`` as
    displayed), alpha flattened onto ``background`` (default white); no DCT
    scaling or resampling, and ``transform`` is the identity. ``limits``
    defaults to :class:`Limits()`. Errors as :func:`preprocess`.
    """
    payload = _as_bytes(data)
    if not isinstance(background, tuple | list) or len(background) != 3:
        raise ValueError(f"background must be an (r, g, b) triple, got {background!r}")
    rgb = tuple(_check_int("background", v, 0, 255) for v in background)
    array, placement = _native.decode(payload, (rgb[0], rgb[1], rgb[2]), _compiled_limits(limits))
    return ImageTensor._placed(array, placement)


def probe(data: bytes, *, limits: Limits = Limits()) -> ImageInfo:
    """Reads the format and stored size from the header only, checking ``limits``.

    Cheap (no pixel data is read), so a corrupt image body goes unnoticed; for
    models that take the original bytes. ``limits`` defaults to :class:`Limits()`.
    Raises :class:`UnsupportedImage`, :class:`CorruptImage` (broken header) or
    :class:`ImageTooLarge`.
    """
    info = _native.probe(_as_bytes(data), _compiled_limits(limits))
    return ImageInfo(format=info.format, width=info.width, height=info.height)
