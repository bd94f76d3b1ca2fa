"""Decoding matches Pillow for the JPEG and PNG flavours clients send."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from adapter import imaging
from tests.native.images import encode, mean_abs_diff, pillow_rgb, png_raw, scene


def decoded(data: bytes) -> np.ndarray:
    """``data`` decoded at its own size (stretch to the same size copies pixels as they are)."""
    info = imaging.probe(data)
    return imaging.decode_resize(data, (info.width, info.height))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"progressive": True},
        {"subsampling": 0},  # 4:4:4
        {"subsampling": 1, "quality": 75},  # 4:2:2
        {"optimize": True, "restart_marker_rows": 1},
    ],
    ids=["baseline", "progressive", "444", "422", "restarts"],
)
def test_jpeg_matches_pillow(params: dict[str, object]) -> None:
    data = encode(scene(403, 301), "JPEG", **params)
    ours = decoded(data)
    assert ours.shape == (301, 403, 3)
    assert mean_abs_diff(ours, pillow_rgb(data)) <= 1.0


def test_grayscale_jpeg_becomes_rgb() -> None:
    grey = Image.fromarray(scene(200, 120)).convert("L")
    data = encode(grey, "JPEG")
    ours = decoded(data)
    assert ours.shape == (120, 200, 3)
    assert np.array_equal(ours[..., 0], ours[..., 1])
    assert np.array_equal(ours[..., 0], ours[..., 2])
    assert mean_abs_diff(ours, pillow_rgb(data)) <= 1.0


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.fromarray(scene(160, 120)).convert("CMYK"), "JPEG")
    assert mean_abs_diff(decoded(data), pillow_rgb(data)) <= 3


def test_rgb_png_is_lossless() -> None:
    pixels = scene(257, 129)
    assert np.array_equal(decoded(encode(pixels, "PNG")), pixels)


@pytest.mark.parametrize("mode", ["L", "P", "1"])
def test_grey_palette_and_bilevel_png_match_pillow(mode: str) -> None:
    image = Image.fromarray(scene(150, 100)).convert(mode)
    data = encode(image, "PNG")
    assert np.array_equal(decoded(data), np.asarray(image.convert("RGB")))


def flattened_on_white(image: Image.Image) -> np.ndarray:
    white = Image.new("RGBA", image.size, (255, 255, 255, 255))
    return np.asarray(Image.alpha_composite(white, image.convert("RGBA")).convert("RGB"))


def alpha_ramp(width: int, height: int) -> np.ndarray:
    return np.tile(np.linspace(0, 255, width).astype(np.uint8), (height, 1))


def test_rgba_png_is_flattened_on_white() -> None:
    rgba = np.dstack([scene(120, 80), alpha_ramp(120, 80)])
    image = Image.fromarray(rgba, "RGBA")
    ours = decoded(encode(image, "PNG"))
    assert np.abs(ours.astype(int) - flattened_on_white(image)).max() <= 1
    assert np.array_equal(ours[:, 0], np.full((80, 3), 255))  # alpha 0: white


def test_grey_alpha_png_is_flattened_on_white() -> None:
    la = np.dstack([scene(64, 32)[..., 0], alpha_ramp(64, 32)])
    image = Image.fromarray(la, "LA")
    ours = decoded(encode(image, "PNG"))
    assert np.abs(ours.astype(int) - flattened_on_white(image)).max() <= 1


def test_palette_png_with_transparency_is_flattened_on_white() -> None:
    image = Image.fromarray(scene(90, 60)).convert("P")
    image.info["transparency"] = int(np.asarray(image)[0, 0])
    data = encode(image, "PNG", transparency=image.info["transparency"])
    ours = decoded(data)
    assert np.array_equal(ours[0, 0], [255, 255, 255])
    with Image.open(io.BytesIO(data)) as reopened:
        expected = flattened_on_white(reopened)
    assert np.abs(ours.astype(int) - expected).max() <= 1


@pytest.mark.parametrize(
    ("channels", "color_type"), [(1, 0), (3, 2), (4, 6)], ids=["grey16", "rgb16", "rgba16"]
)
def test_sixteen_bit_png_is_rounded_to_eight(channels: int, color_type: int) -> None:
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 65536, (40, 50, channels), dtype=np.uint16)
    if channels == 4:
        pixels[..., 3] = 65535  # opaque, so the colour survives flattening
    ours = decoded(png_raw(pixels, color_type))
    expected = np.rint(pixels[..., :3] / 257.0)
    if channels == 1:
        expected = np.repeat(expected, 3, axis=-1)
    assert np.abs(ours.astype(int) - expected).max() <= 1


def test_probe_reads_header_only() -> None:
    jpeg = encode(scene(333, 222), "JPEG")
    png = encode(scene(333, 222), "PNG")
    assert imaging.probe(jpeg) == imaging.ImageInfo("jpeg", 333, 222)
    assert imaging.probe(png) == imaging.ImageInfo("png", 333, 222)
    # The pixel data is not read, so a cut-off body still probes fine.
    assert imaging.probe(jpeg[: len(jpeg) // 2]).width == 333
    assert imaging.probe(png[:40]).height == 222


def test_original_size_is_reported() -> None:
    result = imaging.preprocess(encode(scene(640, 360), "JPEG"), (64, 64))
    assert (result.width, result.height) == (640, 360)
