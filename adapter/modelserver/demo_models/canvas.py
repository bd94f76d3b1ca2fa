"""Synthetic images of scikit-learn's 8x8 digits, for building and testing the demo models.

Only numpy, PIL and scikit-learn are imported here (never TensorFlow), so the
adapter's tests can draw the same canvases the models were built for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

# load_digits() has 1797 samples: the first 1500 build the models, the rest
# are held out for measuring them.
TRAIN_INDICES = range(0, 1500)
HELD_OUT_INDICES = range(1500, 1797)

DIGIT_CELLS = 8  # load_digits images are 8x8 cells
MAX_INK = 16.0  # load_digits cell values run 0..16
REFERENCE_SIDE = 320  # the detector's input side; `unit` maps a canvas to it
BACKGROUND_GREY = (200.0, 255.0)  # light paper, never darker than this
GRADIENT_SPAN = 12.0  # max grey change across the canvas (a faint light gradient)
NOISE_SIGMA = 2.0  # sensor-like grain, in grey levels
INK_GREY = (0.0, 60.0)  # ink colour: always dark, whatever the paper
MIN_GAP = 8  # px of the 320x320 view between two digit squares
PLACEMENT_TRIES = 60  # rejection-sampling attempts per digit


@dataclass
class Canvas:
    """An RGB image and the squares (x_min, y_min, x_max, y_max, px) and digits drawn on it."""

    image: np.ndarray
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)


@functools.cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    """Return load_digits() as (images float64 0..16 [1797, 8, 8], targets int [1797])."""
    bunch = load_digits()
    return bunch.images.astype(np.float64), bunch.target.astype(np.int64)


def render_digit(image8x8: np.ndarray, size_px: int) -> np.ndarray:
    """Upscale one 8x8 digit smoothly (bilinear) to uint8 (size_px, size_px), dark ink on white."""
    grey = 255.0 - np.asarray(image8x8, dtype=np.float64) * 255.0 / MAX_INK
    small = Image.fromarray(np.clip(np.rint(grey), 0, 255).astype(np.uint8), mode="L")
    return np.asarray(small.resize((size_px, size_px), Image.Resampling.BILINEAR))


def paper(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Return a light float (height, width) background: random grey, faint gradient, grain."""
    level = rng.uniform(*BACKGROUND_GREY)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ramp = np.cos(angle) * xs / max(width, 1) + np.sin(angle) * ys / max(height, 1)
    grey = level - GRADIENT_SPAN * rng.uniform(0.0, 1.0) * (ramp - ramp.min())
    grey = grey + rng.normal(0.0, NOISE_SIGMA, size=grey.shape).astype(np.float32)
    return np.clip(grey, BACKGROUND_GREY[0] - GRADIENT_SPAN, 255.0)


def ink_digit(
    grey: np.ndarray, rng: np.random.Generator, index: int, x: int, y: int, side: int
) -> None:
    """Draw sample `index` as a side x side square at (x, y) into `grey`, in place."""
    coverage = 1.0 - render_digit(digits()[0][index], side).astype(np.float32) / 255.0
    ink = rng.uniform(*INK_GREY)
    region = grey[y : y + side, x : x + side]
    # Blending towards a dark ink keeps strokes dark on any paper level.
    region[...] = region * (1.0 - coverage) + ink * coverage


def _fits(square: tuple[int, int, int], placed: list[tuple[int, int, int]], gap: int) -> bool:
    """Tell whether square (x, y, side) keeps `gap` px from every placed square."""
    x, y, side = square
    for px, py, pside in placed:
        apart_x = x >= px + pside + gap or px >= x + side + gap
        apart_y = y >= py + pside + gap or py >= y + side + gap
        if not (apart_x or apart_y):
            return False
    return True


def make_canvas(
    rng: np.random.Generator,
    width: int,
    height: int,
    *,
    indices: range | list[int] | np.ndarray = HELD_OUT_INDICES,
    max_digits: int = 8,
    scale: tuple[float, float] = (4.0, 8.0),
    unit: float | None = None,
    min_gap: int = MIN_GAP,
) -> Canvas:
    """Draw 1..max_digits non-overlapping digits from `indices` on light paper.

    Each digit is a square of side ``8 * s * unit`` px, s uniform in `scale`;
    `unit` defaults to max(width, height) / 320, so that once the canvas is
    letterboxed to 320x320 every digit measures 32-64 px. Squares keep at least
    ``min_gap * unit`` px apart (`min_gap` is in px of that 320x320 view,
    default 8); digits that find no free place after some tries are skipped, so
    at least one and as many as fit are drawn.
    """
    unit = max(width, height) / REFERENCE_SIDE if unit is None else unit
    gap = round(min_gap * unit)
    grey = paper(rng, width, height)
    wanted = int(rng.integers(1, max_digits + 1))
    placed: list[tuple[int, int, int]] = []
    canvas = Canvas(image=np.zeros((height, width, 3), np.uint8))
    for index in rng.choice(np.asarray(indices), size=wanted):
        side = min(round(DIGIT_CELLS * rng.uniform(*scale) * unit), width, height)
        for _ in range(PLACEMENT_TRIES):
            x = int(rng.integers(0, width - side + 1))
            y = int(rng.integers(0, height - side + 1))
            if _fits((x, y, side), placed, gap):
                break
        else:
            continue
        placed.append((x, y, side))
        ink_digit(grey, rng, int(index), x, y, side)
        canvas.boxes.append((float(x), float(y), float(x + side), float(y + side)))
        canvas.labels.append(int(digits()[1][index]))
    canvas.image = np.repeat(np.clip(np.rint(grey), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    return canvas


def render_digit_image(rng: np.random.Generator, index: int, size_px: int = 64) -> np.ndarray:
    """Draw sample `index` at size_px with a random light margin (0-25 % each side), RGB uint8."""
    left, top, right, bottom = (round(m * size_px) for m in rng.uniform(0.0, 0.25, size=4))
    width, height = left + size_px + right, top + size_px + bottom
    grey = paper(rng, width, height)
    ink_digit(grey, rng, index, left, top, size_px)
    return np.repeat(np.clip(np.rint(grey), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
