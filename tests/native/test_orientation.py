"""EXIF orientation is applied: tensors, sizes and boxes are in the image as displayed."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from adapter import imaging
from tests.native.images import encode, mean_abs_diff

WIDTH, HEIGHT = 240, 160  # as displayed
SQUARE = (60, 90, 100, 130)  # left, top, right, bottom, as displayed; inside every crop
RED = (220, 30, 30)

# What turns the displayed image into the stored one, for each EXIF orientation.
TO_STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,  # displayed = stored rotated 90 degrees clockwise
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def displayed() -> Image.Image:
    """A grey, noisy, left-to-right brighter picture with a red square and a blue corner mark."""
    rng = np.random.default_rng(5)
    ramp = np.linspace(40, 200, WIDTH)[None, :] + np.linspace(0, 30, HEIGHT)[:, None]
    pixels = np.repeat(ramp[..., None], 3, axis=-1) + rng.normal(0, 4, (HEIGHT, WIDTH, 1))
    left, top, right, bottom = SQUARE
    pixels[top:bottom, left:right] = RED
    pixels[:20, :30] = (30, 30, 220)  # top-left is unmistakable
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


DISPLAYED = displayed()


def stored(orientation: int, fmt: str) -> bytes:
    """DISPLAYED saved the way a camera would: pixels as stored, plus the EXIF orientation."""
    transpose = TO_STORED[orientation]
    image = DISPLAYED if transpose is None else DISPLAYED.transpose(transpose)
    exif = Image.Exif()
    exif[0x0112] = orientation
    params: dict[str, object] = {"quality": 95} if fmt == "JPEG" else {}
    if fmt == "WEBP":
        params["lossless"] = True
    return encode(image, fmt, exif=exif, **params)


def pillow_displayed(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


FORMATS = ["JPEG", "PNG", "WEBP"]
ORIENTATIONS = list(range(1, 9))


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_tensor_is_the_displayed_image(fmt: str, orientation: int) -> None:
    data = stored(orientation, fmt)
    reference = pillow_displayed(data)
    # The test's own construction: Pillow sees the displayed picture again.
    assert reference.size == (WIDTH, HEIGHT)
    assert mean_abs_diff(np.asarray(reference), np.asarray(DISPLAYED)) <= 2

    result = imaging.preprocess(data, (120, 100))
    assert (result.width, result.height) == (WIDTH, HEIGHT)
    assert result.orientation == orientation
    expected = np.asarray(reference.resize((120, 100), Image.Resampling.BILINEAR))
    assert mean_abs_diff(result.array, expected) <= 2
    top_left = result.array[:5, :8].reshape(-1, 3).mean(axis=0)
    assert top_left[2] > 150 and top_left[0] < 100, top_left  # the blue mark is still top left


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_probe_reports_the_stored_size(orientation: int) -> None:
    info = imaging.probe(stored(orientation, "JPEG"))
    assert (info.width, info.height) == ((HEIGHT, WIDTH) if orientation >= 5 else (WIDTH, HEIGHT))


def test_no_exif_means_orientation_one() -> None:
    for fmt in FORMATS:
        result = imaging.preprocess(encode(DISPLAYED, fmt), (24, 16))
        assert result.orientation == 1


def red_box(array: np.ndarray) -> tuple[int, int, int, int]:
    """The model-pixel box of the red square: pixels more than half as red as it is."""
    pixels = array.astype(np.float64)
    redness = pixels[..., 0] - (pixels[..., 1] + pixels[..., 2]) / 2
    ys, xs = np.nonzero(redness > redness.max() / 2)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("resize", ["stretch", "letterbox", "crop", "resize_shorter_crop"])
def test_box_maps_back_to_the_displayed_image(resize: imaging.ResizeMode, orientation: int) -> None:
    result = imaging.preprocess(stored(orientation, "JPEG"), (128, 128), resize=resize)
    x0, y0, x1, y1 = red_box(result.array)
    t = result.transform
    left, top = t.to_original(x0, y0)
    right, bottom = t.to_original(x1, y1)
    # One model pixel, in original pixels, plus one for JPEG's softened chroma.
    tol_x, tol_y = 1 / t.scale_x + 1, 1 / t.scale_y + 1
    assert left == pytest.approx(SQUARE[0], abs=tol_x)
    assert right == pytest.approx(SQUARE[2], abs=tol_x)
    assert top == pytest.approx(SQUARE[1], abs=tol_y)
    assert bottom == pytest.approx(SQUARE[3], abs=tol_y)


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_transform_is_in_displayed_axes(orientation: int) -> None:
    """Rotated images: scale_x relates output width to the displayed width, not the stored one."""
    t = imaging.preprocess(stored(orientation, "PNG"), (120, 40)).transform
    assert (t.scale_x, t.scale_y) == (120 / WIDTH, 40 / HEIGHT)
    t = imaging.preprocess(stored(orientation, "PNG"), (80, 80), resize="crop").transform
    assert t.scale_x == t.scale_y == pytest.approx(80 / HEIGHT)
    assert (t.pad_x, t.pad_y) == pytest.approx((-40.0 * 80 / HEIGHT, 0.0))
