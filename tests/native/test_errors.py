"""Bad images raise the right ImageError subclass, fast; bad arguments raise ValueError."""

from __future__ import annotations

import struct
import time
import zlib

import numpy as np
import pytest

from adapter import imaging
from tests.native.images import encode, png_chunks, scene

JPEG = encode(scene(320, 240), "JPEG")
PNG = encode(scene(320, 240), "PNG")


def huge_png(width: int = 65535, height: int = 65535) -> bytes:
    """A valid-looking PNG whose header claims ``width`` x ``height`` RGB, with 1 row of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" + b"\x00" * 3 * min(width, 1024))
    return png_chunks([(b"IHDR", ihdr), (b"IDAT", idat), (b"IEND", b"")])


def with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` with its SOF0 frame header rewritten to claim ``width`` x ``height``."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def test_hierarchy_is_value_error() -> None:
    for cls in (imaging.UnsupportedImage, imaging.CorruptImage, imaging.ImageTooLarge):
        assert issubclass(cls, imaging.ImageError)
    assert issubclass(imaging.ImageError, ValueError)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", imaging.UnsupportedImage),
        (b"name,score\nalice,3\n", imaging.UnsupportedImage),
        (b"II*\x00" + b"\x00" * 32, imaging.UnsupportedImage),  # TIFF
        (b"\x89PNG", imaging.UnsupportedImage),
        (JPEG[: len(JPEG) // 2], imaging.CorruptImage),
        (JPEG[:-2], imaging.CorruptImage),  # only the end-of-image marker missing
        (JPEG[:200], imaging.CorruptImage),
        (JPEG[:3], imaging.CorruptImage),
        (PNG[: len(PNG) // 2], imaging.CorruptImage),
        (PNG[:20], imaging.CorruptImage),
        (PNG[:33] + b"\x00\x00\x00\x04IDAT" + b"junk" + b"\x00" * 4, imaging.CorruptImage),
        (huge_png(), imaging.ImageTooLarge),
        (with_jpeg_size(JPEG, 65535, 65535), imaging.ImageTooLarge),
        (with_jpeg_size(JPEG, 16384, 16384), imaging.ImageTooLarge),  # pixels
    ],
    ids=[
        "empty",
        "text",
        "tiff",
        "png-prefix",
        "jpeg-half",
        "jpeg-no-eoi",
        "jpeg-header-only",
        "jpeg-soi-only",
        "png-half",
        "png-cut-ihdr",
        "png-bad-idat",
        "png-65535",
        "jpeg-65535",
        "jpeg-16384-square",
    ],
)
def test_bad_image_raises_typed_error(data: bytes, error: type[imaging.ImageError]) -> None:
    started = time.perf_counter()
    with pytest.raises(error) as caught:
        imaging.preprocess(data, (320, 320))
    assert time.perf_counter() - started < 0.5
    assert str(caught.value)  # a message a client can read


def test_huge_header_fails_before_allocating() -> None:
    """65535x65535 RGB would be 12.9 GB: the header check must refuse it at once."""
    started = time.perf_counter()
    for _ in range(100):
        with pytest.raises(imaging.ImageTooLarge, match="65535 pixels wide"):
            imaging.preprocess(huge_png(), (320, 320))
        with pytest.raises(imaging.ImageTooLarge):
            imaging.probe(huge_png())
    assert time.perf_counter() - started < 1.0


def test_custom_limits() -> None:
    info = imaging.probe(PNG)
    assert (info.width, info.height) == (320, 240)
    tight = [
        (imaging.Limits(max_bytes=len(PNG) - 1), "bytes"),
        (imaging.Limits(max_width=319), "wide"),
        (imaging.Limits(max_height=239), "high"),
        (imaging.Limits(max_pixels=320 * 240 - 1), "pixels"),
    ]
    for limits, words in tight:
        with pytest.raises(imaging.ImageTooLarge, match=words):
            imaging.preprocess(PNG, (32, 32), limits=limits)
        with pytest.raises(imaging.ImageTooLarge, match=words):
            imaging.probe(PNG, limits=limits)
    exact = imaging.Limits(max_bytes=len(PNG), max_width=320, max_height=240, max_pixels=76800)
    assert imaging.preprocess(PNG, (32, 32), limits=exact).array.shape == (32, 32, 3)


def test_default_limits() -> None:
    assert imaging.Limits() == imaging.Limits(
        max_bytes=20 * 1024 * 1024, max_width=16384, max_height=16384, max_pixels=64_000_000
    )
    oversized = JPEG + b"\x00" * (20 * 1024 * 1024)
    with pytest.raises(imaging.ImageTooLarge, match="bytes"):
        imaging.probe(oversized)


def test_probe_errors() -> None:
    with pytest.raises(imaging.UnsupportedImage):
        imaging.probe(b"")
    with pytest.raises(imaging.UnsupportedImage):
        imaging.probe(b"%PDF-1.7")
    with pytest.raises(imaging.CorruptImage):
        imaging.probe(PNG[:16])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"size": (0, 320)},
        {"size": (320, 16385)},
        {"size": (320.0, 320)},
        {"size": (True, 320)},
        {"size": (320,)},
        {"size": 320},
        {"resize": "zoom"},
        {"dtype": "float64"},
        {"pad_value": 256},
        {"pad_value": -1},
        {"pad_value": 1.5},
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict[str, object]) -> None:
    call: dict[str, object] = {"size": (32, 32), **kwargs}
    size = call.pop("size")
    with pytest.raises(ValueError) as caught:
        imaging.preprocess(PNG, size, **call)  # type: ignore[arg-type]
    assert not isinstance(caught.value, imaging.ImageError)


@pytest.mark.parametrize("field", ["max_bytes", "max_width", "max_height", "max_pixels"])
def test_bad_limits_raise_value_error(field: str) -> None:
    for value in (0, -5, 1.5, "10"):
        with pytest.raises(ValueError) as caught:
            imaging.Limits(**{field: value})  # type: ignore[arg-type]
        assert not isinstance(caught.value, imaging.ImageError)


def test_wrong_data_type_raises_type_error() -> None:
    with pytest.raises(TypeError):
        imaging.preprocess("not bytes", (32, 32))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        imaging.probe(None)  # type: ignore[arg-type]


def test_bytes_like_input_is_accepted() -> None:
    expected = imaging.decode_resize(PNG, (16, 16))
    for data in (bytearray(PNG), memoryview(PNG)):
        assert np.array_equal(imaging.decode_resize(data, (16, 16)), expected)  # type: ignore[arg-type]


def test_mangled_images_fail_cleanly() -> None:
    """Random byte flips, cuts and insertions: every outcome is an array or an ImageError.

    A panic in a decoder would surface as RuntimeError and fail this test.
    """
    rng = np.random.default_rng(7)
    seeds = [JPEG, PNG, encode(scene(96, 64), "JPEG", progressive=True)]
    outcomes = {"ok": 0, "error": 0}
    for i in range(600):
        data = bytearray(seeds[i % len(seeds)])
        kind = i % 3
        if kind == 0:
            for pos in rng.integers(0, len(data), rng.integers(1, 8)):
                data[pos] = int(rng.integers(0, 256))
        elif kind == 1:
            del data[int(rng.integers(0, len(data))) :]
        else:
            pos = int(rng.integers(0, len(data)))
            data[pos:pos] = rng.integers(0, 256, rng.integers(1, 16)).astype(np.uint8).tobytes()
        try:
            array = imaging.decode_resize(bytes(data), (24, 16), resize="letterbox")
        except imaging.ImageError:
            outcomes["error"] += 1
        else:
            assert array.shape == (16, 24, 3)
            outcomes["ok"] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0


def test_corrupt_messages_name_the_problem() -> None:
    with pytest.raises(imaging.CorruptImage, match=r"^corrupt JPEG image: truncated"):
        imaging.preprocess(JPEG[:-100], (8, 8))
    with pytest.raises(imaging.CorruptImage, match=r"^corrupt PNG image: truncated"):
        imaging.preprocess(PNG[: len(PNG) // 2], (8, 8))
    with pytest.raises(imaging.UnsupportedImage, match="expected JPEG, PNG, WebP, GIF or BMP"):
        imaging.preprocess(b"BM" + b"\x00" * 64, (8, 8))
