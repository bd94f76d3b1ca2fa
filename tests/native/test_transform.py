"""The reported transform maps model-input pixels back onto the original image exactly."""

from __future__ import annotations

import numpy as np
import pytest

from adapter import imaging
from tests.native.images import encode


def edges(profile: np.ndarray) -> tuple[float, float]:
    """Sub-pixel positions where a dark run in a bright ``profile`` crosses half depth.

    Samples sit at pixel centres (i + 0.5); crossings are linearly interpolated.
    """
    level = (float(profile.max()) + float(profile.min())) / 2
    dark = profile < level
    first, last = int(np.argmax(dark)), len(dark) - 1 - int(np.argmax(dark[::-1]))

    def crossing(i: int, j: int) -> float:
        a, b = float(profile[i]), float(profile[j])
        return i + 0.5 + (j - i) * (a - level) / (a - b)

    return crossing(first - 1, first), crossing(last + 1, last)


@pytest.mark.parametrize(
    ("source", "rect", "size", "resize"),
    [
        ((1000, 333), (250, 100, 650, 250), (320, 320), "letterbox"),  # pad_y = 106.72
        ((300, 700), (40, 200, 260, 550), (256, 192), "letterbox"),  # pad_x = 86.857...
        ((45, 29), (10, 7, 31, 22), (320, 320), "letterbox"),  # upscale x7.1
        ((1000, 333), (250, 100, 650, 250), (320, 320), "stretch"),
        ((45, 29), (10, 7, 31, 22), (200, 310), "stretch"),
    ],
)
def test_rectangle_maps_back(
    source: tuple[int, int],
    rect: tuple[int, int, int, int],
    size: tuple[int, int],
    resize: imaging.ResizeMode,
) -> None:
    """Draw a dark rectangle, find its edges in the output, map them back to the source."""
    width, height = source
    left, top, right, bottom = rect
    pixels = np.full((height, width, 3), 230, np.uint8)
    pixels[top:bottom, left:right] = 20
    result = imaging.preprocess(encode(pixels, "PNG"), size, resize=resize, pad_value=230)
    grey = result.array[..., 0].astype(np.float64)
    t = result.transform

    # Profiles through the middle of the rectangle, in model pixels.
    mid_x, mid_y = (
        (left + right) / 2 * t.scale_x + t.pad_x,
        (top + bottom) / 2 * t.scale_y + t.pad_y,
    )
    x0, x1 = edges(grey[int(mid_y)])
    y0, y1 = edges(grey[:, int(mid_x)])

    found_left, found_top = t.to_original(x0, y0)
    found_right, found_bottom = t.to_original(x1, y1)
    # Within a tenth of a model pixel, expressed in original pixels.
    tol_x, tol_y = 0.1 / t.scale_x + 0.05, 0.1 / t.scale_y + 0.05
    assert found_left == pytest.approx(left, abs=tol_x)
    assert found_right == pytest.approx(right, abs=tol_x)
    assert found_top == pytest.approx(top, abs=tol_y)
    assert found_bottom == pytest.approx(bottom, abs=tol_y)


def test_image_corners_map_to_original_corners() -> None:
    data = encode(np.zeros((333, 1000, 3), np.uint8), "PNG")
    t = imaging.preprocess(data, (320, 320), resize="letterbox").transform
    assert t.to_original(t.pad_x, t.pad_y) == (0.0, 0.0)
    far_x, far_y = t.to_original(320 - t.pad_x, 320 - t.pad_y)
    assert far_x == pytest.approx(1000) and far_y == pytest.approx(333)


def test_to_original_formula() -> None:
    t = imaging.Transform(scale_x=0.5, scale_y=0.25, pad_x=10.0, pad_y=-2.0)
    assert t.to_original(10.0, -2.0) == (0.0, 0.0)
    assert t.to_original(60.0, 23.0) == (100.0, 100.0)
