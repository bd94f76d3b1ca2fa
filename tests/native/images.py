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
    bit_depth = 16 if pixels.dtype == np.uint16 else 8
    return png_encode(pixels, color_type, bit_depth)


# Adam7 passes: (first column, first row, column step, row step).
ADAM7 = [
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
]


def png_encode(
    samples: npt.NDArray[np.integer],
    color_type: int,
    bit_depth: int = 8,
    *,
    palette: bytes | None = None,
    interlace: bool = False,
) -> bytes:
    """A PNG written by hand: any bit depth PNG allows, palettes, Adam7 interlacing.

    ``samples`` is (height, width) or (height, width, channels) of raw sample
    values (palette indices for ``color_type`` 3); filter type 0 on every row.
    """
    height, width = samples.shape[:2]
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\x00" + png_row(row, bit_depth) for row in sub)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, int(interlace))
    chunks = [(b"IHDR", ihdr)]
    if palette is not None:
        chunks.append((b"PLTE", palette))
    chunks += [(b"IDAT", zlib.compress(raw)), (b"IEND", b"")]
    return png_chunks(chunks)


def png_row(row: npt.NDArray[np.integer], bit_depth: int) -> bytes:
    """One scanline's samples packed at ``bit_depth`` bits, big-endian, as PNG stores them."""
    flat = row.reshape(-1)
    if bit_depth == 16:
        return flat.astype(">u2").tobytes()
    if bit_depth == 8:
        return flat.astype(np.uint8).tobytes()
    shifts = np.arange(bit_depth - 1, -1, -1)
    bits = (flat[:, None].astype(np.uint8) >> shifts) & 1
    return np.packbits(bits.reshape(-1)).tobytes()


def deflate_zeros(mebibytes: int) -> bytes:
    """A valid zlib stream of ``mebibytes`` MiB of zero bytes, about 1 KB per MiB.

    Built from one repeated full-flush block, so a gigabyte costs nothing to make.
    """
    compressor = zlib.compressobj(9)
    header = (compressor.compress(b"\x00" * (1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH))[:2]
    block = compressor.compress(b"\x00" * (1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    adler = ((mebibytes << 20) % 65521) << 16 | 1  # Adler-32 of n zeros: a = 1, b = n
    return header + block * mebibytes + b"\x03\x00" + struct.pack(">I", adler)


def jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """A baseline JPEG with its SOF0 frame header rewritten to claim ``width`` x ``height``."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


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
