"""Test images made on the fly: a photo-like scene, encoders and a raw PNG writer."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import numpy.typing as npt
from PIL import Image

U8Array = npt.NDArray[np.uint8]


def scene(width: int, height: int, seed: int = 0) -> U8Array:
    """A smooth, colourful RGB scene with some hard-edged shapes, like a photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / width, y / height
    image = np.stack(
        [
            128 + 100 * np.sin(2 * np.pi * (u * 1.5 + v * 0.5)),
            128 + 100 * np.cos(2 * np.pi * (v * 2.0 - u * 0.3)),
            255 * (0.5 * u + 0.5 * v),
        ],
        axis=-1,
    )
    for _ in range(6):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(width // 10, width // 3), rng.integers(height // 10, height // 3)
        image[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, 3)
    return np.asarray(np.clip(image, 0, 255), dtype=np.uint8)


def encode(image: Image.Image | U8Array, fmt: str = "JPEG", **params: object) -> bytes:
    """``image`` encoded by Pillow (JPEG at quality 92 unless told)."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if fmt == "JPEG":
        params.setdefault("quality", 92)
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def png_raw(pixels: npt.NDArray[np.uint8] | npt.NDArray[np.uint16], color_type: int) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB): 8 or 16 bits from the dtype.

    ``color_type`` is PNG's: 0 grey, 2 RGB, 4 grey+alpha, 6 RGBA.
    """
    height, width = pixels.shape[:2]
    bit_depth = 16 if pixels.dtype == np.uint16 else 8
    data = pixels.astype(">u2") if bit_depth == 16 else pixels
    rows = data.reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return png_chunks([(b"IHDR", ihdr), (b"IDAT", zlib.compress(raw)), (b"IEND", b"")])


def png_chunks(chunks: list[tuple[bytes, bytes]]) -> bytes:
    """The PNG signature followed by ``chunks`` with correct lengths and CRCs."""
    out = b"\x89PNG\r\n\x1a\n"
    for tag, body in chunks:
        crc = zlib.crc32(tag + body)
        out += struct.pack(">I", len(body)) + tag + body + struct.pack(">I", crc)
    return out


def pillow_rgb(data: bytes) -> U8Array:
    """``data`` decoded by Pillow as 8-bit RGB."""
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def mean_abs_diff(a: npt.NDArray[np.generic], b: npt.NDArray[np.generic]) -> float:
    """Mean absolute difference in 0..255 levels."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.mean(np.abs(a.astype(np.float64) - b.astype(np.float64))))
