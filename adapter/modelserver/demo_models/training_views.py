"""Training images for the detector: canvases of samples 0-1499, resized as the adapter would.

numpy and PIL only. Each view is a 320x320 uint8 image that went through a
letterbox or a stretch (digits squashed up to 4.5:1) and maybe JPEG, with the
drawn squares mapped into its pixels; some carry non-digit scribbles, so the
patch classifier learns a background class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from adapter.modelserver.demo_models import canvas as canvases
from adapter.modelserver.demo_models import evaluation

MAX_ASPECT = 4.5  # the adapter's worst stretch: a 200x900 upload into 320x320
LONG_SIDES = (320, 480, 640, 960)  # canvas long sides; larger ones add resize blur
JPEG_QUALITIES = (60, 95)  # uniform range, when a view is JPEG'd
JPEG_SHARE = 0.5
STRETCH_SHARE = 0.5
SCRIBBLES = (0, 3)  # non-digit marks per canvas, uniform count in [low, high]
# Scribbles are sized unlike any digit (digits span 32-64 px of the 320x320
# letterboxed view), so that "background" never means "a plain 1 or 0".
DASH_LENGTH = (3.0, 14.0)  # px of the letterboxed view
RULE_LENGTH = (90.0, 220.0)
SCRIBBLE_WIDTH = (1.0, 6.0)


@dataclass
class TrainingView:
    """A 320x320 RGB view and its digit squares in view px (x_min,y_min,x_max,y_max) and labels."""

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


def _canvas_size(rng: np.random.Generator) -> tuple[int, int]:
    """Pick a (width, height): any orientation, aspect ratio log-uniform in [1, MAX_ASPECT]."""
    long_side = int(rng.choice(LONG_SIDES))
    short_side = round(long_side / np.exp(rng.uniform(0.0, np.log(MAX_ASPECT))))
    return (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)


def _clear_of(box: np.ndarray, squares: np.ndarray, gap: float) -> bool:
    """Tell whether `box` (x_min,y_min,x_max,y_max) stays `gap` px away from every square."""
    if len(squares) == 0:
        return True
    apart = (box[0] >= squares[:, 2] + gap) | (squares[:, 0] >= box[2] + gap)
    apart |= (box[1] >= squares[:, 3] + gap) | (squares[:, 1] >= box[3] + gap)
    return bool(np.all(apart))


def scribble(image: np.ndarray, rng: np.random.Generator, squares: np.ndarray, unit: float) -> None:
    """Draw a few dark dashes, long rules and blots away from the digit squares, in place."""
    height, width = image.shape[:2]
    picture = Image.fromarray(image)
    pen = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(SCRIBBLES[0], SCRIBBLES[1] + 1))):
        shape = int(rng.integers(3))
        lengths = RULE_LENGTH if shape == 1 else DASH_LENGTH
        length = rng.uniform(*lengths) * unit
        thickness = max(1, round(rng.uniform(*SCRIBBLE_WIDTH) * unit))
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        angle = rng.uniform(0, np.pi)
        if shape == 2:  # a blot
            points = [x, y, x + length, y + length * rng.uniform(0.5, 1.0)]
        else:  # a dash or a long rule
            points = [x, y, x + length * np.cos(angle), y + length * np.sin(angle)]
        box = np.array([min(points[0::2]), min(points[1::2]), max(points[0::2]), max(points[1::2])])
        if not _clear_of(box, squares, canvases.MIN_GAP * unit + thickness):
            continue
        ink = (int(rng.uniform(*canvases.INK_GREY)),) * 3
        if shape == 2:
            pen.ellipse(list(box), fill=ink)
        else:
            pen.line(points, fill=ink, width=thickness)
    image[...] = np.asarray(picture)


def training_view(seed: np.random.SeedSequence) -> TrainingView:
    """Draw one training canvas (samples 0-1499) and resize it as the adapter would."""
    rng = np.random.default_rng(seed)
    width, height = _canvas_size(rng)
    canvas = canvases.make_canvas(rng, width, height, indices=canvases.TRAIN_INDICES)
    unit = max(width, height) / canvases.REFERENCE_SIDE
    scribble(canvas.image, rng, np.array(canvas.boxes).reshape(-1, 4), unit)
    resize = evaluation.stretch if rng.random() < STRETCH_SHARE else evaluation.letterbox
    view = resize(canvas.image)
    image = view.image
    if rng.random() < JPEG_SHARE:
        quality = int(rng.integers(JPEG_QUALITIES[0], JPEG_QUALITIES[1] + 1))
        image = evaluation.decode(evaluation.encode(image, "jpeg", quality))
    return TrainingView(image, view.from_canvas(np.array(canvas.boxes)), np.array(canvas.labels))


def training_views(seed: int, count: int) -> list[TrainingView]:
    """Return `count` training views, each from its own child of `seed` (order-independent)."""
    return [training_view(child) for child in np.random.SeedSequence(seed).spawn(count)]
