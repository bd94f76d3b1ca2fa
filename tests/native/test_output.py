"""Output options: layout, colour order, grey, dtype, normalization, alpha, batches, validation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from adapter import imaging
from bench.photos import photo
from tests.native.images import encode, scene

PICTURE = photo(160, 120)
JPEG = encode(PICTURE, "JPEG")
PNG = encode(PICTURE, "PNG")
SIZE = (96, 64)


def run(data: bytes = JPEG, **options: object) -> np.ndarray:
    return imaging.preprocess(data, SIZE, **options).array  # type: ignore[arg-type]


def test_nchw_is_nhwc_transposed() -> None:
    for options in ({}, {"color": "gray"}, {"dtype": "float32", "mean": 100.0, "std": 50.0}):
        nhwc = run(**options)
        nchw = run(layout="nchw", **options)
        assert nchw.shape == (nhwc.shape[2], 64, 96)
        assert np.array_equal(nchw, nhwc.transpose(2, 0, 1))
        assert nchw.flags.c_contiguous


def test_bgr_is_rgb_reversed() -> None:
    rgb, bgr = run(), run(color="bgr")
    assert np.array_equal(bgr, rgb[..., ::-1])


def test_gray_is_pillows_luma() -> None:
    gray = imaging.decode_resize(PNG, (160, 120), color="gray")
    assert gray.shape == (120, 160, 1)
    expected = np.asarray(Image.fromarray(PICTURE).convert("L"))
    assert np.abs(gray[..., 0].astype(int) - expected).max() <= 1


def test_gray_source_stays_one_channel_or_becomes_three() -> None:
    grey = Image.fromarray(PICTURE).convert("L")
    data = encode(grey, "PNG")
    as_gray = imaging.decode_resize(data, (160, 120), color="gray")
    assert np.array_equal(as_gray[..., 0], np.asarray(grey))
    as_rgb = imaging.decode_resize(data, (160, 120), color="rgb")
    assert np.array_equal(as_rgb, np.repeat(as_gray, 3, axis=-1))


@pytest.mark.parametrize("color", ["rgb", "bgr", "gray"])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_shape_and_channels_properties(color: imaging.Color, layout: imaging.Layout) -> None:
    spec = imaging.Preprocessing(SIZE, color=color, layout=layout)
    channels = 1 if color == "gray" else 3
    assert spec.channels == channels
    assert spec.shape == ((64, 96, channels) if layout == "nhwc" else (channels, 64, 96))
    assert spec.run(JPEG).array.shape == spec.shape


def test_float32_without_normalization_holds_uint8_values() -> None:
    for options in ({}, {"resize": "letterbox", "pad_value": 9}, {"color": "gray"}):
        as_u8 = run(**options)
        as_f32 = run(dtype="float32", **options)
        assert as_f32.dtype == np.float32
        assert np.array_equal(as_f32, as_u8.astype(np.float32))


MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)


@pytest.mark.parametrize("color", ["rgb", "bgr"])
@pytest.mark.parametrize("layout", ["nhwc", "nchw"])
def test_mean_std_per_output_channel(color: imaging.Color, layout: imaging.Layout) -> None:
    """``mean[i]``/``std[i]`` apply to output channel i, whatever the colour order and layout."""
    values = run(color=color, layout=layout).astype(np.float64)
    out = run(color=color, layout=layout, dtype="float32", mean=MEAN, std=STD)
    axis = (slice(None), None, None) if layout == "nchw" else (None, None, slice(None))
    expected = (values - np.array(MEAN)[axis]) / np.array(STD)[axis]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_scalar_mean_std_and_gray() -> None:
    values = run(color="gray").astype(np.float64)
    out = run(color="gray", dtype="float32", mean=127.5, std=127.5)
    np.testing.assert_allclose(out, (values - 127.5) / 127.5, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("scale", "offset"),
    [(1 / 255, 0.0), (2 / 255, -1.0), ((1 / 255, 2 / 255, 3 / 255), (0.0, -1.0, 0.5))],
)
def test_scale_offset(scale: float | tuple[float, ...], offset: float | tuple[float, ...]) -> None:
    values = run().astype(np.float64)
    out = run(dtype="float32", scale=scale, offset=offset)
    np.testing.assert_allclose(
        out, values * np.array(scale) + np.array(offset), rtol=1e-6, atol=1e-6
    )


def test_fully_transparent_png_shows_the_background() -> None:
    clear = np.zeros((50, 70, 4), np.uint8)
    clear[..., :3] = PICTURE[:50, :70]
    data = encode(Image.fromarray(clear, "RGBA"), "PNG")
    cases: list[tuple[tuple[int, int], imaging.ResizeMode]] = [
        ((70, 50), "stretch"),
        ((35, 25), "letterbox"),  # same aspect: no padding
        ((20, 20), "crop"),
    ]
    for size, resize in cases:
        array = imaging.decode_resize(data, size, resize=resize, background=(10, 20, 30))
        assert (array.reshape(-1, 3) == (10, 20, 30)).all()


def test_partial_alpha_follows_the_formula() -> None:
    alpha = np.tile(np.arange(256, dtype=np.uint8), (30, 1))[:, ::3]
    rgba = np.dstack([PICTURE[:30, : alpha.shape[1]], alpha])
    data = encode(Image.fromarray(rgba, "RGBA"), "PNG")
    background = (200, 40, 90)
    array = imaging.decode_resize(data, (alpha.shape[1], 30), background=background)
    colour, a = rgba[..., :3].astype(int), rgba[..., 3:].astype(int)
    expected = (colour * a + np.array(background) * (255 - a) + 127) // 255
    assert np.array_equal(array, expected)


def test_letterbox_padding_is_pad_value_normalized() -> None:
    wide = encode(scene(300, 100), "PNG")  # 96x32 placed in 96x64: 16 rows of padding each side
    u8 = imaging.decode_resize(wide, SIZE, resize="letterbox", pad_value=114)
    assert (u8[:15] == 114).all() and (u8[-15:] == 114).all()
    out = imaging.decode_resize(
        wide, SIZE, resize="letterbox", pad_value=114, dtype="float32", mean=MEAN, std=STD
    )
    expected = (114 - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(
        out[:15].reshape(-1, 3), np.broadcast_to(expected, (15 * 96, 3)), rtol=1e-6
    )
    gray = imaging.decode_resize(wide, SIZE, resize="letterbox", pad_value=114, color="gray")
    assert (gray[:15] == 114).all()


BATCH = [
    encode(photo(200, 150, 1), "JPEG"),
    encode(photo(90, 160, 2), "PNG"),
    encode(photo(64, 64, 3), "WEBP", lossless=True),
    encode(Image.fromarray(photo(120, 80, 4)).convert("P"), "GIF"),
    encode(photo(33, 17, 5), "BMP"),
]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"resize": "letterbox", "layout": "nchw", "color": "bgr"},
        {"dtype": "float32", "mean": MEAN, "std": STD, "resize": "crop"},
        {"color": "gray", "resize": "resize_shorter_crop"},
    ],
)
def test_batch_equals_each_image_alone(options: dict[str, object]) -> None:
    spec = imaging.Preprocessing(SIZE, **options)  # type: ignore[arg-type]
    batch = spec.run_batch(BATCH)
    assert batch.array.shape == (len(BATCH), *spec.shape)
    assert batch.array.flags.c_contiguous
    assert len(batch.items) == len(BATCH)
    for i, (data, item) in enumerate(zip(BATCH, batch.items, strict=True)):
        alone = spec.run(data)
        assert isinstance(item, imaging.ImageTensor)
        assert np.array_equal(batch.array[i], alone.array)
        assert np.shares_memory(item.array, batch.array)
        assert (item.format, item.width, item.height) == (alone.format, alone.width, alone.height)
        assert item.transform == alone.transform


def test_batch_keeps_going_past_a_corrupt_item() -> None:
    corrupt = BATCH[0][: len(BATCH[0]) // 2]
    images = [BATCH[1], corrupt, b"not an image", BATCH[2]]
    batch = imaging.preprocess_batch(images, SIZE, pad_value=7)
    assert isinstance(batch.items[1], imaging.CorruptImage)
    assert isinstance(batch.items[2], imaging.UnsupportedImage)
    assert (batch.array[1] == 7).all() and (batch.array[2] == 7).all()
    for i, data in ((0, BATCH[1]), (3, BATCH[2])):
        assert isinstance(batch.items[i], imaging.ImageTensor)
        assert np.array_equal(batch.array[i], imaging.decode_resize(data, SIZE))


def test_failed_batch_slot_is_normalized_padding() -> None:
    batch = imaging.preprocess_batch(
        [b"junk", BATCH[0]], SIZE, pad_value=114, dtype="float32", mean=MEAN, std=STD
    )
    assert isinstance(batch.items[0], imaging.UnsupportedImage)
    expected = (114 - np.array(MEAN)) / np.array(STD)
    np.testing.assert_allclose(batch.array[0], np.broadcast_to(expected, (64, 96, 3)), rtol=1e-6)


def test_batch_respects_limits() -> None:
    batch = imaging.preprocess_batch(BATCH[:2], SIZE, limits=imaging.Limits(max_width=150))
    assert isinstance(batch.items[0], imaging.ImageTooLarge)  # 200 wide
    assert isinstance(batch.items[1], imaging.ImageTensor)  # 90 wide


def test_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError) as caught:
        imaging.preprocess_batch([], SIZE)
    assert not isinstance(caught.value, imaging.ImageError)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"dtype": "uint8", "mean": 0.5, "std": 0.5}, "mean"),
        ({"dtype": "uint8", "scale": 1 / 255}, "scale"),
        ({"dtype": "float32", "mean": 0.5}, "std"),
        ({"dtype": "float32", "std": 0.5}, "mean"),
        ({"dtype": "float32", "mean": 0.5, "std": 0.0}, "std"),
        ({"dtype": "float32", "mean": (1.0, 2.0), "std": 1.0}, "mean"),
        ({"dtype": "float32", "mean": 0.5, "std": 0.5, "scale": 2.0}, "scale"),
        ({"dtype": "float64"}, "dtype"),
        ({"resize": "fill"}, "resize"),
        ({"filter": "nearest"}, "filter"),
        ({"color": "rgba"}, "color"),
        ({"layout": "hwc"}, "layout"),
        ({"pad_value": 256}, "pad_value"),
        ({"pad_value": -1}, "pad_value"),
        ({"background": (0, 0, 256)}, "background"),
        ({"background": (0, 0)}, "background"),
        ({"size": (0, 224)}, "size"),
        ({"size": (224, 16385)}, "size"),
        ({"size": (224,)}, "size"),
        ({"resize": "resize_shorter_crop", "shorter_side": 100}, "shorter_side"),
    ],
)
def test_invalid_preprocessing_names_the_field(options: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {"size": (224, 224), **options}
    with pytest.raises(ValueError, match=field) as caught:
        imaging.Preprocessing(**arguments)  # type: ignore[arg-type]
    assert not isinstance(caught.value, imaging.ImageError)


def test_preprocessing_is_frozen_and_reusable() -> None:
    spec = imaging.Preprocessing(SIZE, color="bgr")
    with pytest.raises(AttributeError):
        spec.color = "rgb"  # type: ignore[misc]
    assert np.array_equal(spec.run(JPEG).array, spec.run(JPEG).array)
    assert np.array_equal(spec.run(JPEG).array, imaging.preprocess(JPEG, SIZE, color="bgr").array)


def test_gray_of_a_cmyk_jpeg() -> None:
    data = encode(Image.fromarray(PICTURE).convert("CMYK"), "JPEG", quality=95)
    gray = imaging.decode_resize(data, (160, 120), color="gray")[..., 0]
    with Image.open(io.BytesIO(data)) as image:
        expected = np.asarray(image.convert("RGB").convert("L"))
    assert np.abs(gray.astype(int) - expected).mean() <= 2
