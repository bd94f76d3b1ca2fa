"""Instance masks: a box-relative mask pasted into the image, as COCO run-length encoding.

Mask R-CNN style models (TF OD API ``detection_masks``, ``[N, h, w]`` in
0..1) give each detection a small mask covering its box. It is resampled
bilinearly at the centre of every original pixel inside the box and
thresholded at 0.5, as the TF OD API's ``reframe_box_masks_to_image_masks``
does, then encoded as COCO's *uncompressed* RLE: ``size`` is ``[height,
width]`` and ``counts`` alternate runs of 0s and 1s over the pixels in
column-major order, starting with 0s (pycocotools' ``frPyObjects`` reads it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

MASK_THRESHOLD = 0.5


@dataclass(frozen=True)
class Rle:
    """COCO uncompressed RLE of a mask over the whole image."""

    size: tuple[int, int]
    counts: tuple[int, ...]

    def decode(self) -> npt.NDArray[np.bool_]:
        """The ``[height, width]`` mask the runs describe."""
        height, width = self.size
        values = np.zeros(len(self.counts), dtype=bool)
        values[1::2] = True
        flat = np.repeat(values, self.counts)
        return flat.reshape(width, height).T


def _samples(start: int, stop: int, low: float, high: float, cells: int) -> npt.NDArray[Any]:
    """Mask coordinates (cell units, centres at ``i + 0.5``) of pixel centres ``start..stop``."""
    centres = np.arange(start, stop, dtype=np.float64) + 0.5
    return (centres - low) / (high - low) * cells - 0.5


def _bilinear(mask: npt.NDArray[Any], rows: npt.NDArray[Any], cols: npt.NDArray[Any]) -> Any:
    """``mask`` sampled at every ``(row, col)`` pair of the grid, edges clamped."""
    h, w = mask.shape

    def axis(coords: npt.NDArray[Any], size: int) -> tuple[Any, Any, Any]:
        clamped = np.clip(coords, 0.0, size - 1.0)
        low = np.floor(clamped).astype(np.intp)
        high = np.minimum(low + 1, size - 1)
        return low, high, clamped - low

    r0, r1, fr = axis(rows, h)
    c0, c1, fc = axis(cols, w)
    top = mask[r0][:, c0] * (1 - fc) + mask[r0][:, c1] * fc
    bottom = mask[r1][:, c0] * (1 - fc) + mask[r1][:, c1] * fc
    return top * (1 - fr)[:, None] + bottom * fr[:, None]


def paste_mask(mask: npt.NDArray[Any], corners: tuple[float, ...], width: int, height: int) -> Rle:
    """``mask`` (``[h, w]``, covering the box ``x0, y0, x1, y1`` in image pixels) as RLE
    over the ``width x height`` image; the box may reach outside the image."""
    x0, y0, x1, y1 = corners
    grid = np.asarray(mask, dtype=np.float64)
    c0, c1 = max(0, math.floor(x0)), min(width, math.ceil(x1))
    r0, r1 = max(0, math.floor(y0)), min(height, math.ceil(y1))
    total = width * height
    if grid.ndim != 2 or grid.size == 0 or c1 <= c0 or r1 <= r0 or x1 <= x0 or y1 <= y0:
        return Rle((height, width), (total,))
    cols = _samples(c0, c1, x0, x1, grid.shape[1])
    rows = _samples(r0, r1, y0, y1, grid.shape[0])
    inside = ((rows >= -0.5) & (rows <= grid.shape[0] - 0.5))[:, None] & (
        (cols >= -0.5) & (cols <= grid.shape[1] - 0.5)
    )[None, :]
    region = (_bilinear(grid, rows, cols) >= MASK_THRESHOLD) & inside
    return Rle((height, width), _runs(region, r0, c0, height, total))


def _runs(
    region: npt.NDArray[np.bool_], r0: int, c0: int, height: int, total: int
) -> tuple[int, ...]:
    """Column-major runs over the image of ``region`` placed at row ``r0``, column ``c0``."""
    # Each column padded with a 0 above and below, so runs start and end within it.
    padded = np.pad(region.T.astype(np.int8), ((0, 0), (1, 1)))
    col, row = np.nonzero(np.diff(padded, axis=1) == 1)
    end_col, end_row = np.nonzero(np.diff(padded, axis=1) == -1)
    starts = (c0 + col) * height + r0 + row
    ends = (c0 + end_col) * height + r0 + end_row
    if starts.size == 0:
        return (total,)
    # A run reaching a column's bottom row goes on at the next column's top.
    joined = ends[:-1] == starts[1:]
    starts = np.concatenate([starts[:1], starts[1:][~joined]])
    ends = np.concatenate([ends[:-1][~joined], ends[-1:]])
    bounds = np.empty(2 * len(starts) + 2, dtype=np.int64)
    bounds[0], bounds[-1] = 0, total
    bounds[1:-1:2], bounds[2:-1:2] = starts, ends
    counts = [int(n) for n in np.diff(bounds)]
    if counts[-1] == 0:  # the mask reaches the last pixel: no trailing 0s
        counts.pop()
    return tuple(counts)
