"""Deterministic photo-like test images, and helpers to encode them.

:func:`photo` makes an RGB ``uint8`` array of any size that compresses like a
real photograph: smooth multi-octave colour noise (the "scene"), hard-edged
discs and rectangles (edges, which JPEG spends bits on), and mild sensor
grain. A 4000x3000 image saved by :func:`jpeg` at quality 90 is about
2.5-3 MB, like a 12 MP phone photo, and takes well under 2 s to generate.

The same ``(width, height, seed)`` always gives the same pixels (NumPy's
PCG64 generator and Pillow's bicubic resampling only). Features are sized in
pixels (one octave cell is the same number of pixels at every image size),
so bytes per pixel stay roughly constant across sizes.

Used by ``bench/preprocess.py``; tests may use it too::

    from bench.photos import photo, jpeg
    data = jpeg(photo(640, 480, seed=3))
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = ["jpeg", "photo", "png"]

# (cells per 4000 pixels, amplitude in levels) of each octave of smooth noise.
_OCTAVES: tuple[tuple[int, float], ...] = ((4, 90.0), (16, 45.0), (64, 25.0), (256, 12.0))
# The octaves are summed on a grid this many times coarser than the image, then
# upsampled once: the finest octave's cells are ~16 px wide, so this loses nothing.
_COARSE = 4
_SHAPES = 30


def _smooth_noise(rng: np.random.Generator, width: int, height: int) -> npt.NDArray[np.float32]:
    """Sum of the octaves at ``width`` x ``height``, centred on 128, float32 HxWx3."""
    acc = np.full((height, width, 3), 128.0, dtype=np.float32)
    for cells, amplitude in _OCTAVES:
        grid_w = max(2, width * _COARSE * cells // 4000 + 2)
        grid_h = max(2, height * _COARSE * cells // 4000 + 2)
        grid = rng.normal(0.0, 1.0, (grid_h, grid_w, 3)).astype(np.float32)
        span = float(grid.max() - grid.min()) + 1e-6
        levels = ((grid - grid.min()) / span * 255.0).astype(np.uint8)
        up = Image.fromarray(levels, "RGB").resize((width, height), Image.Resampling.BICUBIC)
        acc += (np.asarray(up, dtype=np.float32) - 127.0) * (amplitude / 127.0)
    return acc


def _draw_shapes(rng: np.random.Generator, img: npt.NDArray[np.uint8]) -> None:
    """Blends hard-edged discs and rectangles into ``img`` in place, 50 % opacity."""
    height, width = img.shape[:2]
    short = min(width, height)
    for index in range(_SHAPES):
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        radius = rng.uniform(0.02, 0.15) * short
        half_colour = (rng.uniform(0, 255, 3) * 0.5).astype(np.uint8)
        x0, x1 = max(0, int(cx - radius)), min(width, int(cx + radius) + 1)
        y0, y1 = max(0, int(cy - radius)), min(height, int(cy + radius) + 1)
        if x0 >= x1 or y0 >= y1:
            continue
        region = img[y0:y1, x0:x1]
        blended = region >> 1  # <= 127, plus a half colour <= 127: no overflow
        blended += half_colour
        if index % 3 == 2:  # every third shape is a rectangle: straight edges
            region[...] = blended
            continue
        yy = (np.arange(y0, y1, dtype=np.float32) - cy) ** 2
        xx = (np.arange(x0, x1, dtype=np.float32) - cx) ** 2
        inside = yy[:, None] + xx[None, :] < radius * radius
        np.copyto(region, blended, where=inside[:, :, None])


def _add_grain(rng: np.random.Generator, img: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """``img`` plus triangular noise in -15..15 (sigma ~6.5 levels), saturated."""
    noise = rng.integers(0, 256, img.shape, dtype=np.uint8)
    # The sum of a byte's two nibbles is triangular on 0..30: one draw per sample.
    grain = (noise & 15).astype(np.int16)
    grain += noise >> 4
    grain += img
    grain -= 15
    np.clip(grain, 0, 255, out=grain)
    return grain.astype(np.uint8)


def photo(width: int, height: int, seed: int = 0) -> npt.NDArray[np.uint8]:
    """A photo-like RGB image: a C-contiguous ``uint8`` array of shape ``(height, width, 3)``.

    Deterministic in ``(width, height, seed)``. ``width`` and ``height`` must
    be positive; any size works (tiny ones are just noisy colour fields).
    """
    if width < 1 or height < 1:
        raise ValueError(f"width and height must be positive, got {width}x{height}")
    rng = np.random.default_rng(seed)
    coarse_w, coarse_h = -(-width // _COARSE), -(-height // _COARSE)
    coarse = np.clip(_smooth_noise(rng, coarse_w, coarse_h), 0, 255).astype(np.uint8)
    scene = Image.fromarray(coarse, "RGB").resize((width, height), Image.Resampling.BICUBIC)
    img = np.array(scene)  # a writable copy
    _draw_shapes(rng, img)
    return _add_grain(rng, img)


def _rgb_image(array: npt.NDArray[np.uint8]) -> Image.Image:
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected a uint8 HxWx3 array, got {array.dtype} {array.shape}")
    return Image.fromarray(array, "RGB")


def jpeg(
    array: npt.NDArray[np.uint8],
    quality: int = 90,
    progressive: bool = False,
    subsampling: int = 2,
) -> bytes:
    """Encodes an RGB ``uint8`` array as JPEG with Pillow (libjpeg-turbo).

    ``subsampling`` is Pillow's: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0 (the default,
    what cameras write). ``progressive`` makes a multi-scan progressive JPEG.
    """
    out = io.BytesIO()
    _rgb_image(array).save(
        out, "JPEG", quality=quality, progressive=progressive, subsampling=subsampling
    )
    return out.getvalue()


def png(array: npt.NDArray[np.uint8]) -> bytes:
    """Encodes an RGB ``uint8`` array as an 8-bit RGB PNG with Pillow's default compression."""
    out = io.BytesIO()
    _rgb_image(array).save(out, "PNG")
    return out.getvalue()
