"""Every resize mode and filter matches Pillow on every format, and reports its transform."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from PIL import Image, ImageOps

from adapter import imaging
from bench.photos import photo
from tests.native.images import encode, mean_abs_diff, pillow_rgb

FILTERS = {
    "bilinear": Image.Resampling.BILINEAR,
    "area": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
}
MODES = ["stretch", "letterbox", "crop", "resize_shorter_crop"]
PAD = 114

# name: (encoder arguments, source size, output size)
SOURCES: dict[str, tuple[dict[str, object], tuple[int, int], tuple[int, int]]] = {
    # 2400x1800 -> 224x224 is far past 2:1, where JPEG's DCT-domain scaling kicks in.
    "jpeg-large": ({"format": "JPEG", "quality": 90}, (2400, 1800), (224, 224)),
    "jpeg-small": ({"format": "JPEG", "quality": 90}, (400, 300), (224, 224)),
    # 16:9 to a square: stretch reads 1/8 of the columns and 1/4 of the rows.
    "jpeg-wide": ({"format": "JPEG", "quality": 90}, (1920, 1080), (224, 224)),
    "jpeg-tall": ({"format": "JPEG", "quality": 90}, (1080, 1920), (224, 224)),
    "png-portrait": ({"format": "PNG"}, (300, 400), (224, 160)),
    "webp-lossless": ({"format": "WEBP", "lossless": True}, (500, 280), (192, 192)),
    "gif-upscale": ({"format": "GIF"}, (200, 150), (256, 224)),
    "bmp": ({"format": "BMP"}, (320, 240), (160, 200)),
}


@functools.cache
def source(name: str) -> tuple[bytes, Image.Image]:
    """The encoded image and Pillow's RGB decode of it (the reference's input)."""
    params, (width, height), _ = SOURCES[name]
    params = dict(params)
    fmt = str(params.pop("format"))
    data = encode(photo(width, height, seed=len(name)), fmt, **params)
    return data, Image.fromarray(pillow_rgb(data))


def default_shorter_side(size: tuple[int, int]) -> int:
    return round(max(size) * 256 / 224)


def pillow_reference(
    image: Image.Image, size: tuple[int, int], mode: str, method: Image.Resampling
) -> np.ndarray:
    """Pillow's rendering of ``mode``, as the contract describes it."""
    width, height = image.size
    if mode == "stretch":
        return np.asarray(image.resize(size, method))
    if mode == "crop":
        return np.asarray(ImageOps.fit(image, size, method=method))
    if mode == "letterbox":
        scale = min(size[0] / width, size[1] / height)
        placed = (max(1, round(width * scale)), max(1, round(height * scale)))
        canvas = Image.new("RGB", size, (PAD,) * 3)
        offset = ((size[0] - placed[0]) // 2, (size[1] - placed[1]) // 2)
        canvas.paste(image.resize(placed, method), offset)
        return np.asarray(canvas)
    # resize_shorter_crop: the centred region that becomes ``size`` once the shorter side
    # is scaled to shorter_side, exact to the sub-pixel, as ImageOps.fit does for "crop".
    scale = default_shorter_side(size) / min(width, height)
    region = (size[0] / scale, size[1] / scale)
    left, top = (width - region[0]) / 2, (height - region[1]) / 2
    box = (left, top, left + region[0], top + region[1])
    return np.asarray(image.resize(size, method, box=box))


@pytest.mark.parametrize("name", SOURCES)
@pytest.mark.parametrize("filter_name", FILTERS)
@pytest.mark.parametrize("mode", MODES)
def test_matches_pillow(name: str, filter_name: imaging.Filter, mode: imaging.ResizeMode) -> None:
    data, image = source(name)
    size = SOURCES[name][2]
    result = imaging.preprocess(data, size, resize=mode, filter=filter_name, pad_value=PAD)
    assert result.array.shape == (size[1], size[0], 3)
    expected = pillow_reference(image, size, mode, FILTERS[filter_name])
    assert mean_abs_diff(result.array, expected) <= 3


def test_filters_differ() -> None:
    """The filter option reaches the resizer: area and lanczos do not give bilinear's pixels."""
    data, _ = source("png-portrait")
    outputs = {f: imaging.decode_resize(data, (75, 100), filter=f) for f in FILTERS}
    assert not np.array_equal(outputs["bilinear"], outputs["area"])
    assert not np.array_equal(outputs["bilinear"], outputs["lanczos"])


def blank(width: int, height: int) -> bytes:
    return encode(np.zeros((height, width, 3), np.uint8), "PNG")


@pytest.mark.parametrize(
    ("source_size", "size", "mode", "expected"),
    [
        ((400, 200), (100, 100), "stretch", (0.25, 0.5, 0.0, 0.0)),
        ((400, 200), (100, 100), "letterbox", (0.25, 0.25, 0.0, 25.0)),
        ((200, 400), (100, 100), "letterbox", (0.25, 0.25, 25.0, 0.0)),
        ((400, 200), (100, 100), "crop", (0.5, 0.5, -50.0, 0.0)),
        ((200, 400), (100, 50), "crop", (0.5, 0.5, 0.0, -75.0)),
        ((300, 300), (150, 150), "crop", (0.5, 0.5, 0.0, 0.0)),
        ((512, 256), (224, 224), "resize_shorter_crop", (1.0, 1.0, -144.0, -16.0)),
        ((1024, 512), (224, 224), "resize_shorter_crop", (0.5, 0.5, -144.0, -16.0)),
        # Default shorter side for 320x240 is round(320 * 256 / 224) = 366.
        ((1464, 732), (320, 240), "resize_shorter_crop", (0.5, 0.5, -206.0, -63.0)),
    ],
)
def test_transform_values(
    source_size: tuple[int, int],
    size: tuple[int, int],
    mode: imaging.ResizeMode,
    expected: tuple[float, float, float, float],
) -> None:
    t = imaging.preprocess(blank(*source_size), size, resize=mode).transform
    assert (t.scale_x, t.scale_y, t.pad_x, t.pad_y) == pytest.approx(expected, abs=1e-9)


def test_explicit_shorter_side() -> None:
    t = imaging.preprocess(
        blank(1000, 500), (224, 224), resize="resize_shorter_crop", shorter_side=250
    ).transform
    assert (t.scale_x, t.scale_y) == pytest.approx((0.5, 0.5))
    assert (t.pad_x, t.pad_y) == pytest.approx((-(500 - 224) / 2, -(250 - 224) / 2))


def test_shorter_side_equal_to_the_size_is_a_plain_centre_crop() -> None:
    t = imaging.preprocess(
        blank(600, 400), (200, 200), resize="resize_shorter_crop", shorter_side=200
    ).transform
    assert (t.scale_x, t.pad_x, t.pad_y) == pytest.approx((0.5, -50.0, 0.0))


def test_default_shorter_side() -> None:
    assert default_shorter_side((224, 224)) == 256
    for size in [(224, 224), (299, 299), (320, 240), (100, 380)]:
        t = imaging.preprocess(blank(2000, 1000), size, resize="resize_shorter_crop").transform
        assert t.scale_y == pytest.approx(default_shorter_side(size) / 1000, rel=2e-3), size


@pytest.mark.parametrize("shorter_side", [223, 0, -256])
def test_shorter_side_below_the_size_is_refused(shorter_side: int) -> None:
    with pytest.raises(ValueError, match="shorter_side") as caught:
        imaging.Preprocessing((224, 160), resize="resize_shorter_crop", shorter_side=shorter_side)
    assert not isinstance(caught.value, imaging.ImageError)


@pytest.mark.parametrize("mode", MODES)
def test_centre_maps_to_centre(mode: imaging.ResizeMode) -> None:
    """Whatever the mode, the output's centre is the image's centre."""
    t = imaging.preprocess(blank(733, 411), (224, 160), resize=mode).transform
    x, y = t.to_original(112, 80)
    assert (x, y) == pytest.approx((733 / 2, 411 / 2), abs=1.0)


@pytest.mark.parametrize("mode", ["crop", "resize_shorter_crop"])
def test_crops_fill_the_output(mode: imaging.ResizeMode) -> None:
    """Crop modes never pad: a white image stays white to the last pixel."""
    white = encode(np.full((411, 733, 3), 255, np.uint8), "PNG")
    array = imaging.decode_resize(white, (224, 160), resize=mode, pad_value=0)
    assert (array == 255).all()
