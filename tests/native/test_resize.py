"""Resizing matches Pillow's antialiased bilinear, in both modes and both dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from adapter import imaging
from tests.native.images import encode, mean_abs_diff, pillow_rgb, scene

SIZES = [
    ((1200, 900), (320, 320)),  # downscale, aspect changes
    ((640, 480), (224, 224)),
    ((1000, 333), (320, 320)),  # fractional letterbox padding
    ((300, 700), (256, 192)),  # tall into wide
    ((64, 48), (300, 200)),  # upscale
]


def pillow_stretch(data: bytes, size: tuple[int, int]) -> np.ndarray:
    image = Image.fromarray(pillow_rgb(data))
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR))


def pillow_letterbox(
    data: bytes, size: tuple[int, int], t: imaging.Transform, pad_value: int
) -> np.ndarray:
    """Pillow's rendering of the placement that ``t`` describes: whole covered pixels only."""
    image = Image.fromarray(pillow_rgb(data))
    width, height = image.size
    x0, y0 = math.ceil(t.pad_x - 1e-6), math.ceil(t.pad_y - 1e-6)
    x1 = min(size[0], math.floor(t.pad_x + width * t.scale_x + 1e-6))
    y1 = min(size[1], math.floor(t.pad_y + height * t.scale_y + 1e-6))
    box = (
        max(0.0, (x0 - t.pad_x) / t.scale_x),
        max(0.0, (y0 - t.pad_y) / t.scale_y),
        min(width, (x1 - t.pad_x) / t.scale_x),
        min(height, (y1 - t.pad_y) / t.scale_y),
    )
    placed = image.resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR, box=box)
    canvas = Image.new("RGB", size, (pad_value,) * 3)
    canvas.paste(placed, (x0, y0))
    return np.asarray(canvas)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize(("source", "size"), SIZES)
def test_stretch_matches_pillow(
    source: tuple[int, int], size: tuple[int, int], dtype: imaging.DType
) -> None:
    data = encode(scene(*source), "PNG")
    result = imaging.preprocess(data, size, dtype=dtype)
    assert result.array.shape == (size[1], size[0], 3)
    assert result.array.dtype == np.dtype(dtype)
    assert mean_abs_diff(result.array, pillow_stretch(data, size)) <= 3
    t = result.transform
    assert (t.scale_x, t.scale_y) == (size[0] / source[0], size[1] / source[1])
    assert (t.pad_x, t.pad_y) == (0.0, 0.0)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
@pytest.mark.parametrize(("source", "size"), SIZES)
def test_letterbox_matches_pillow(
    source: tuple[int, int], size: tuple[int, int], dtype: imaging.DType
) -> None:
    data = encode(scene(*source), "JPEG")
    result = imaging.preprocess(data, size, resize="letterbox", dtype=dtype, pad_value=114)
    expected = pillow_letterbox(data, size, result.transform, 114)
    assert result.array.shape == expected.shape
    assert mean_abs_diff(result.array, expected) <= 3


@pytest.mark.parametrize(("source", "size"), SIZES)
def test_letterbox_geometry(source: tuple[int, int], size: tuple[int, int]) -> None:
    (w, h), (tw, th) = source, size
    data = encode(np.zeros((h, w, 3), np.uint8), "PNG")
    result = imaging.preprocess(data, size, resize="letterbox", pad_value=200)
    t = result.transform
    scale = min(tw / w, th / h)
    assert t.scale_x == t.scale_y == pytest.approx(scale, rel=1e-12)
    assert t.pad_x == pytest.approx((tw - w * scale) / 2, abs=1e-9)
    assert t.pad_y == pytest.approx((th - h * scale) / 2, abs=1e-9)
    # Whole pixels outside the placed image are padding; whole pixels inside are image.
    grey = result.array[..., 0]
    left, top = math.floor(t.pad_x), math.floor(t.pad_y)
    right, bottom = math.ceil(t.pad_x + w * scale), math.ceil(t.pad_y + h * scale)
    assert (grey[:, :left] == 200).all() and (grey[:, right:] == 200).all()
    assert (grey[:top] == 200).all() and (grey[bottom:] == 200).all()
    inner = grey[math.ceil(t.pad_y) + 1 : bottom - 2, math.ceil(t.pad_x) + 1 : right - 2]
    assert inner.size > 0 and (inner == 0).all()


def test_float32_holds_the_uint8_values() -> None:
    data = encode(scene(500, 400), "JPEG")
    for resize in ("stretch", "letterbox"):
        as_u8 = imaging.decode_resize(data, (128, 96), resize=resize, pad_value=7)
        as_f32 = imaging.decode_resize(data, (128, 96), resize=resize, pad_value=7, dtype="float32")
        assert as_f32.dtype == np.float32
        assert np.array_equal(as_f32, as_u8.astype(np.float32))


def test_size_is_width_then_height() -> None:
    array = imaging.decode_resize(encode(scene(100, 100), "PNG"), (224, 160))
    assert array.shape == (160, 224, 3)


def test_letterbox_sliver_stays_visible() -> None:
    """A 2000x2 strip scaled to 320 wide is 0.32 px high: still drawn as one row."""
    data = encode(np.zeros((2, 2000, 3), np.uint8), "PNG")
    array = imaging.decode_resize(data, (320, 320), resize="letterbox", pad_value=255)
    dark_rows = np.flatnonzero((array[..., 0] < 255).all(axis=1))
    assert len(dark_rows) == 1 and dark_rows[0] in (159, 160)
