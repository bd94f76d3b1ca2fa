"""Writes the seed corpus of the `decode` fuzz target: one small file per
format variant the decoders handle, each behind knob bytes that pick the
output size and mode (see fuzz_targets/decode.rs).

Usage: ``python rust_ext/fuzz/seeds.py`` (from the repository root, with the
test extra installed); the files are committed under ``corpus/decode/``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).parent / "corpus" / "decode"


def scene(width: int, height: int) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x ^ y) & 255], -1)
    return Image.fromarray(rgb.astype(np.uint8))


def save(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **params)
    return out.getvalue()


def variants() -> dict[str, bytes]:
    rgb = scene(96, 48)
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "jpeg-baseline": save(rgb, "JPEG", quality=80),
        "jpeg-progressive": save(rgb, "JPEG", quality=80, progressive=True),
        "jpeg-444-restarts": save(rgb, "JPEG", subsampling=0, restart_marker_blocks=2),
        "jpeg-gray": save(rgb.convert("L"), "JPEG"),
        "jpeg-cmyk": save(rgb.convert("CMYK"), "JPEG"),
        "jpeg-exif-rotated": save(rgb, "JPEG", exif=exif),
        "png-rgb": save(rgb, "PNG"),
        "png-rgba": save(rgb.convert("RGBA"), "PNG"),
        "png-palette": save(rgb.convert("P"), "PNG"),
        "png-gray-1bit": save(rgb.convert("1"), "PNG"),
        "png-interlaced": save(rgb, "PNG", interlace=1),
        "webp-lossy": save(rgb, "WEBP", quality=70),
        "webp-lossless-alpha": save(rgb.convert("RGBA"), "WEBP", lossless=True),
        "gif": save(rgb.convert("P"), "GIF"),
        "bmp": save(rgb, "BMP"),
    }


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, data in variants().items():
        # Full size, stretch; 1/8 x 1/4, stretch (the few-coefficient path);
        # 1/2 x 1/2, crop, gray; 1/4 x 1/8, letterbox, channels first.
        for knob in (0x00, 0x0B, 0x65, 0x9E):
            (OUT / f"{name}-{knob:02x}").write_bytes(bytes([knob]) + data)


if __name__ == "__main__":
    main()
