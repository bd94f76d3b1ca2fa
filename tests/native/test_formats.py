"""Every format and variant clients send decodes like Pillow; formats are sniffed from bytes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from adapter import imaging
from bench.photos import photo
from tests.native.images import encode, mean_abs_diff, pillow_rgb, png_encode, scene

PICTURE = scene(120, 90)
RNG = np.random.default_rng(3)


def decoded(data: bytes) -> np.ndarray:
    """``data`` decoded at its own size (stretch to the same size copies pixels as they are)."""
    info = imaging.probe(data)
    return imaging.decode_resize(data, (info.width, info.height))


def ycck_jpeg(cmyk: Image.Image) -> bytes:
    """``cmyk`` as an Adobe YCCK JPEG, which Pillow cannot write directly.

    Pillow writes Adobe (inverted) CMYK with transform 0; storing the YCbCr of
    C, M, Y and flipping the Adobe transform byte to 2 makes libjpeg see YCCK.
    """
    c, m, y, k = (np.asarray(band, np.float64) for band in cmyk.split())
    luma = 0.299 * c + 0.587 * m + 0.114 * y
    cb = 128 + (y - luma) / 1.772
    cr = 128 + (c - luma) / 1.402
    stored = [255 - luma, 255 - cb, 255 - cr, k]  # Pillow inverts CMYK on the way out
    bands = [Image.fromarray(np.clip(np.rint(b), 0, 255).astype(np.uint8)) for b in stored]
    data = bytearray(encode(Image.merge("CMYK", bands), "JPEG", quality=95))
    adobe = data.index(b"Adobe")
    assert data[adobe + 11] == 0
    data[adobe + 11] = 2
    return bytes(data)


def flattened(rgba: np.ndarray, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """The contract's alpha flattening: ``(c * a + bg * (255 - a) + 127) // 255``."""
    colour, alpha = rgba[..., :3].astype(np.int64), rgba[..., 3:].astype(np.int64)
    out = (colour * alpha + np.array(background) * (255 - alpha) + 127) // 255
    return out.astype(np.uint8)


def pillow_rgba(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGBA"))


def rgba_picture() -> Image.Image:
    alpha = np.tile(np.linspace(0, 255, 120).astype(np.uint8), (90, 1))
    return Image.fromarray(np.dstack([PICTURE, alpha]), "RGBA")


def jpeg_variants() -> dict[str, tuple[bytes, float]]:
    """JPEG flavours and how close (mean levels) each must be to Pillow's decode."""
    cmyk = Image.fromarray(PICTURE).convert("CMYK")
    return {
        "jpeg-baseline": (encode(PICTURE, "JPEG"), 1.0),
        "jpeg-progressive": (encode(PICTURE, "JPEG", progressive=True), 1.0),
        "jpeg-grey": (encode(Image.fromarray(PICTURE).convert("L"), "JPEG"), 1.0),
        "jpeg-cmyk": (encode(cmyk, "JPEG"), 2.0),
        "jpeg-ycck": (ycck_jpeg(cmyk), 2.0),
        "webp-lossy": (encode(PICTURE, "WEBP", quality=90), 2.0),
        "webp-lossy-alpha": (encode(rgba_picture(), "WEBP", quality=90), 2.0),
    }


def lossless_variants() -> dict[str, bytes]:
    """Lossless flavours: decoded exactly as Pillow does (alpha flattened onto white)."""
    pil = Image.fromarray(PICTURE)
    grey = RNG.integers(0, 256, (37, 29), dtype=np.uint8)
    palette = RNG.integers(0, 256, (16, 3), dtype=np.uint8).tobytes()
    indices = RNG.integers(0, 16, (37, 29), dtype=np.uint8)
    variants = {
        "png-rgb": encode(PICTURE, "PNG"),
        "png-rgba": encode(rgba_picture(), "PNG"),
        "png-grey": encode(pil.convert("L"), "PNG"),
        "png-grey-alpha": encode(rgba_picture().convert("LA"), "PNG"),
        "png-palette": encode(pil.convert("P"), "PNG"),
        "png-palette-4bit": encode(pil.quantize(16), "PNG", bits=4),
        "png-interlaced-rgb": png_encode(PICTURE, 2, interlace=True),
        "png-interlaced-palette-4bit": png_encode(indices, 3, 4, palette=palette, interlace=True),
        "webp-lossless": encode(PICTURE, "WEBP", lossless=True),
        "webp-lossless-alpha": encode(rgba_picture(), "WEBP", lossless=True),
        "gif": encode(pil.convert("P"), "GIF"),
        "bmp-24bit": encode(PICTURE, "BMP"),
        "bmp-8bit-palette": encode(pil.convert("P"), "BMP"),
        "bmp-grey": encode(pil.convert("L"), "BMP"),
        "bmp-1bit": encode(pil.convert("1"), "BMP"),
    }
    for depth in (1, 2, 4):
        samples = grey >> (8 - depth)
        variants[f"png-grey-{depth}bit"] = png_encode(samples, 0, depth)
        variants[f"png-grey-{depth}bit-interlaced"] = png_encode(samples, 0, depth, interlace=True)
    return variants


LOSSY = jpeg_variants()
LOSSLESS = lossless_variants()


def reference(data: bytes) -> np.ndarray:
    """Pillow's decode as RGB, alpha flattened onto white by the contract's formula."""
    with Image.open(io.BytesIO(data)) as image:
        has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    return flattened(pillow_rgba(data)) if has_alpha else pillow_rgb(data)


@pytest.mark.parametrize("name", LOSSLESS)
def test_lossless_formats_match_pillow_exactly(name: str) -> None:
    data = LOSSLESS[name]
    ours = decoded(data)
    expected = reference(data)
    assert ours.shape == expected.shape
    assert np.array_equal(ours, expected), mean_abs_diff(ours, expected)


@pytest.mark.parametrize("name", LOSSY)
def test_lossy_formats_match_pillow(name: str) -> None:
    data, tolerance = LOSSY[name]
    ours = decoded(data)
    assert ours.shape == (90, 120, 3)
    assert mean_abs_diff(ours, reference(data)) <= tolerance


def test_cmyk_and_ycck_both_look_like_the_picture() -> None:
    """Pillow's reference is itself checked here: both JPEGs show the original picture."""
    for name in ("jpeg-cmyk", "jpeg-ycck"):
        assert mean_abs_diff(decoded(LOSSY[name][0]), PICTURE) <= 4, name


def test_sixteen_bit_interlaced_png_is_rounded_to_eight() -> None:
    pixels = RNG.integers(0, 65536, (21, 34, 3), dtype=np.uint16)
    ours = decoded(png_encode(pixels, 2, 16, interlace=True))
    assert np.abs(ours.astype(int) - np.rint(pixels / 257.0)).max() <= 1


def test_low_bit_grey_png_spans_the_full_range() -> None:
    """2-bit grey 0..3 stands for 0, 85, 170, 255."""
    samples = np.tile(np.arange(4, dtype=np.uint8), (3, 2))
    ours = decoded(png_encode(samples, 0, 2))
    assert np.array_equal(ours[..., 0], samples * 85)


def animation(fmt: str) -> tuple[bytes, list[np.ndarray]]:
    frames = [photo(96, 64, seed) for seed in range(3)]
    out = io.BytesIO()
    first, *rest = (Image.fromarray(frame) for frame in frames)
    params = {"lossless": True} if fmt == "WEBP" else {}
    first.save(out, fmt, save_all=True, append_images=rest, duration=80, loop=0, **params)
    return out.getvalue(), frames


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_gives_its_first_frame(fmt: str) -> None:
    data, frames = animation(fmt)
    with Image.open(io.BytesIO(data)) as image:
        assert getattr(image, "n_frames", 1) == 3
        image.seek(0)
        expected = np.asarray(image.convert("RGB"))
    ours = decoded(data)
    assert np.array_equal(ours, expected)
    distances = [mean_abs_diff(ours, frame) for frame in frames]
    assert distances.index(min(distances)) == 0, distances


def test_gif_transparency_is_flattened_on_white() -> None:
    image = Image.fromarray(PICTURE).convert("P")
    index = int(np.asarray(image)[0, 0])
    ours = decoded(encode(image, "GIF", transparency=index))
    transparent = np.asarray(image) == index
    assert (ours[transparent] == 255).all()
    assert np.array_equal(ours[~transparent], np.asarray(image.convert("RGB"))[~transparent])


ALL = {**{name: data for name, (data, _) in LOSSY.items()}, **LOSSLESS}


@pytest.mark.parametrize("name", ALL)
def test_probe_reports_format_and_header_size(name: str) -> None:
    data = ALL[name]
    with Image.open(io.BytesIO(data)) as image:
        size = image.size
    info = imaging.probe(data)
    assert info == imaging.ImageInfo(name.split("-")[0], *size)


@pytest.mark.parametrize("name", ["jpeg-baseline", "png-rgb", "webp-lossy", "gif", "bmp-24bit"])
def test_result_names_the_sniffed_format(name: str) -> None:
    result = imaging.preprocess(ALL[name], (32, 32))
    assert result.format == name.split("-")[0]
    assert (result.width, result.height) == (120, 90)


def test_format_comes_from_the_bytes_alone() -> None:
    """No file name or content type is trusted: PNG bytes are a PNG, whatever a client said."""
    png = LOSSLESS["png-rgb"]
    assert imaging.preprocess(png, (120, 90)).format == "png"
    assert np.array_equal(imaging.decode_resize(png, (120, 90)), PICTURE)
    # JPEG bytes with a PNG-looking name inside their comment are still JPEG.
    jpeg = encode(PICTURE, "JPEG", comment=b"\x89PNG\r\n\x1a\n image.png")
    assert imaging.probe(jpeg).format == "jpeg"


def tiff() -> bytes:
    return encode(PICTURE, "TIFF")


def ico() -> bytes:
    return encode(PICTURE, "ICO")


UNSUPPORTED = {
    "tiff": tiff(),
    "tiff-big-endian": b"MM\x00*" + b"\x00" * 64,
    "ico": ico(),
    "svg": b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "svg-bare": b'<svg width="10" height="10"><rect width="10" height="10"/></svg>',
    "text": b"hello, this is not an image\n" * 10,
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"\x00" * 64,
    "avif": encode(PICTURE, "AVIF"),
    "jpeg2000": encode(PICTURE, "JPEG2000"),
    "empty": b"",
}


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_other_formats_are_unsupported(name: str) -> None:
    data = UNSUPPORTED[name]
    with pytest.raises(imaging.UnsupportedImage) as caught:
        imaging.preprocess(data, (32, 32))
    assert str(caught.value)
    with pytest.raises(imaging.UnsupportedImage):
        imaging.probe(data)
