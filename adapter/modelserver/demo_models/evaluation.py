"""What the adapter does to a canvas before the detector sees it, and how detections are scored.

numpy and PIL only (no TensorFlow), like :mod:`canvas`: letterbox and stretch
resizes, a JPEG/PNG round trip, box mapping back to canvas pixels, IoU and
VOC-style mean average precision.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from adapter.modelserver.demo_models.canvas import REFERENCE_SIDE

PAD_GREY = 255  # letterbox padding, as the adapter pads
JPEG_QUALITY = 85
IOU_MATCH = 0.5  # a detection counts when its box overlaps a drawn square this much
DIGIT_CLASSES = range(10)


@dataclass(frozen=True)
class View:
    """A resized image plus the per-axis affine map: view px = canvas px * scale + offset."""

    image: np.ndarray
    scale_x: float
    scale_y: float
    offset_x: float = 0.0
    offset_y: float = 0.0

    def to_canvas(self, boxes: np.ndarray) -> np.ndarray:
        """Map normalized [K,4] ymin,xmin,ymax,xmax view boxes to canvas px (x0,y0,x1,y1)."""
        height, width = self.image.shape[:2]
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        xs = (boxes[:, [1, 3]] * width - self.offset_x) / self.scale_x
        ys = (boxes[:, [0, 2]] * height - self.offset_y) / self.scale_y
        return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)

    def from_canvas(self, boxes: np.ndarray) -> np.ndarray:
        """Map canvas px boxes (x_min,y_min,x_max,y_max) [K,4] to view px, same order."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scale = np.array([self.scale_x, self.scale_y] * 2)
        return boxes * scale + np.array([self.offset_x, self.offset_y] * 2)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize an RGB uint8 image with PIL's (antialiased) bilinear filter."""
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def letterbox(image: np.ndarray, side: int = REFERENCE_SIDE) -> View:
    """Scale to fit side x side keeping the aspect ratio, centred, padded with PAD_GREY."""
    height, width = image.shape[:2]
    scale = side / max(width, height)
    fitted_w, fitted_h = max(1, round(width * scale)), max(1, round(height * scale))
    out = np.full((side, side, 3), PAD_GREY, np.uint8)
    left, top = (side - fitted_w) // 2, (side - fitted_h) // 2
    out[top : top + fitted_h, left : left + fitted_w] = _resize(image, fitted_w, fitted_h)
    return View(out, fitted_w / width, fitted_h / height, float(left), float(top))


def stretch(image: np.ndarray, side: int = REFERENCE_SIDE) -> View:
    """Resize non-uniformly to side x side (digits get squashed along one axis)."""
    height, width = image.shape[:2]
    return View(_resize(image, side, side), side / width, side / height)


def encode(image: np.ndarray, codec: str, quality: int = JPEG_QUALITY) -> bytes:
    """Encode RGB uint8 as "png" or "jpeg" bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=codec.upper(), quality=quality)
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    """Decode PNG/JPEG bytes to RGB uint8."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x_min,y_min,x_max,y_max) box against [K,4] boxes."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    low = np.maximum(box[:2], boxes[:, :2])
    high = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(high - low, 0.0, None), axis=1)
    areas = np.prod(boxes[:, 2:] - boxes[:, :2], axis=1)
    union = np.prod(np.asarray(box[2:]) - box[:2]) + areas - inter
    return inter / np.maximum(union, 1e-9)


@dataclass
class Detections:
    """One image's detections in canvas px: boxes [K,4] x_min,y_min,x_max,y_max, digits, scores."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray


def _hits(
    digit: int, found: list[Detections], truths: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, int]:
    """Return one digit's (scores, true-positive flags), best first, and its truth count."""
    rows = [
        (s, i, b)
        for i, d in enumerate(found)
        for b, lab, s in zip(d.boxes, d.labels, d.scores, strict=True)
        if lab == digit
    ]
    rows.sort(key=lambda row: -row[0])
    taken = [np.zeros(int(np.sum(labels == digit)), bool) for _, labels in truths]
    flags = np.zeros(len(rows), bool)
    for k, (_, image, box) in enumerate(rows):
        boxes, labels = truths[image]
        squares = np.flatnonzero(labels == digit)
        if squares.size == 0:
            continue
        overlaps = box_iou(np.asarray(box), boxes[squares])
        best = int(np.argmax(overlaps))
        if overlaps[best] >= IOU_MATCH and not taken[image][best]:
            taken[image][best] = flags[k] = True
    return np.array([r[0] for r in rows]), flags, sum(len(t) for t in taken)


def average_precision(flags: np.ndarray, truth_count: int) -> float:
    """VOC all-point AP from true-positive flags of detections sorted by descending score."""
    if truth_count == 0:
        return float("nan")
    hits = np.cumsum(flags)
    recall = np.concatenate([[0.0], hits / truth_count, [1.0]])
    precision = np.concatenate([[1.0], hits / np.arange(1, len(flags) + 1), [0.0]])
    # Precision envelope: the best precision at any recall at least this high.
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * precision[steps + 1]))


def mean_average_precision(
    found: list[Detections], truths: list[tuple[np.ndarray, np.ndarray]]
) -> float:
    """Mean over digits 0-9 (present in `truths`) of VOC AP at IoU >= 0.5.

    `truths` holds per image (boxes [K,4] x_min,y_min,x_max,y_max, digit labels [K]).
    """
    truths = [(np.asarray(b, np.float64).reshape(-1, 4), np.asarray(lab)) for b, lab in truths]
    scores = []
    for digit in DIGIT_CLASSES:
        _, flags, count = _hits(digit, found, truths)
        if count:
            scores.append(average_precision(flags, count))
    return float(np.mean(scores))
