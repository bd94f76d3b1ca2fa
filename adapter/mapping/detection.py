"""Detection outputs -> labelled boxes in the original image's pixels.

TF OD API models answer ``detection_boxes`` as normalized
``[ymin, xmin, ymax, xmax]`` relative to *their input tensor*; a YOLO head's
boxes, once decoded and suppressed (:mod:`adapter.postprocess`), are corners
in input pixels. The adapter letterboxed, stretched or fitted the upload into
that tensor, so each box is mapped back through the same transform into the
original image's pixels; a Mask R-CNN box's mask is pasted into them as COCO
RLE (:mod:`adapter.mapping.masks`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from adapter.mapping.labels import LabelMap
from adapter.mapping.masks import Rle, paste_mask
from adapter.postprocess import Kept

DEFAULT_MIN_SCORE = 0.5
DEFAULT_MAX_RESULTS = 100


class ToOriginal(Protocol):
    """Maps a point of the model's input tensor back to original image pixels."""

    def to_original(self, x: float, y: float) -> tuple[float, float]: ...


@dataclass(frozen=True)
class Frame:
    """Geometry of one image: its size, the model input's size, and the map between."""

    image_width: int
    image_height: int
    input_width: int
    input_height: int
    transform: ToOriginal


@dataclass(frozen=True)
class Box:
    """An axis-aligned box; pixels of the original image, or 0..1 when normalized."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float


@dataclass(frozen=True)
class Detection:
    """One detected object: label, class id, score and its box two ways."""

    label: str
    class_id: int
    score: float
    box: Box
    box_normalized: Box
    mask: Rle | None = None


@dataclass(frozen=True)
class DetectionOptions:
    """What to keep: ``min_score`` (default 0.5), at most ``max_results`` (default 100),
    only the ``labels`` named (default all), and each box's mask when ``masks``
    (models with a ``masks`` output)."""

    min_score: float = DEFAULT_MIN_SCORE
    max_results: int = DEFAULT_MAX_RESULTS
    labels: frozenset[str] | None = None
    masks: bool = False


def _original(corners: tuple[float, float, float, float], frame: Frame) -> tuple[float, ...]:
    """Input-pixel corners ``x0, y0, x1, y1`` in original pixels (not clipped)."""
    x0, y0 = frame.transform.to_original(corners[0], corners[1])
    x1, y1 = frame.transform.to_original(corners[2], corners[3])
    return x0, y0, x1, y1


def _clipped(corners: tuple[float, ...], frame: Frame) -> Box | None:
    """The box clipped to the image (letterbox padding is not part of the picture)."""
    x0, y0, x1, y1 = corners
    x0, x1 = (min(max(v, 0.0), float(frame.image_width)) for v in (x0, x1))
    y0, y1 = (min(max(v, 0.0), float(frame.image_height)) for v in (y0, y1))
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2))


def _tf_od_corners(normalized: npt.NDArray[Any], frame: Frame) -> tuple[float, ...]:
    """A TF OD API box (normalized ``ymin, xmin, ymax, xmax`` of the input) in original pixels."""
    ymin, xmin, ymax, xmax = (float(v) for v in normalized)
    w, h = frame.input_width, frame.input_height
    return _original((xmin * w, ymin * h, xmax * w, ymax * h), frame)


def _normalized(box: Box, frame: Frame) -> Box:
    w, h = frame.image_width, frame.image_height
    return Box(
        round(box.x_min / w, 6), round(box.y_min / h, 6),
        round(box.x_max / w, 6), round(box.y_max / h, 6),
    )  # fmt: skip


def map_detections(
    boxes: npt.NDArray[Any],
    classes: npt.NDArray[Any],
    scores: npt.NDArray[Any],
    count: int | None,
    *,
    frame: Frame,
    labels: LabelMap,
    options: DetectionOptions,
    masks: npt.NDArray[Any] | None = None,
) -> list[Detection]:
    """Turn one image's TF OD API outputs into detections sorted by score (highest first).

    ``boxes`` is ``[K, 4]``; ``classes`` and ``scores`` are ``[K]``; only the
    first ``count`` rows are read when the model reports a count. ``masks``
    (``[K, h, w]``, box-relative, 0..1) are pasted into the image as RLE.
    """
    limit = len(scores) if count is None else max(0, min(int(count), len(scores)))
    order = np.argsort(-scores[:limit], kind="stable")
    found: list[Detection] = []
    for row in order:
        score = float(scores[row])
        if score < options.min_score or len(found) >= options.max_results:
            break
        corners = _tf_od_corners(boxes[row], frame)
        mask = None if masks is None else masks[row]
        detection = _detection(
            corners, round(float(classes[row])), score, frame, labels, options, mask
        )
        if detection is not None:
            found.append(detection)
    return found


def map_yolo(
    kept: Kept, *, frame: Frame, labels: LabelMap, options: DetectionOptions
) -> list[Detection]:
    """A YOLO head's kept boxes (already scored, suppressed and best first) as detections."""
    found: list[Detection] = []
    for corners, score, class_id in zip(
        kept.boxes.tolist(), kept.scores.tolist(), kept.classes.tolist(), strict=True
    ):
        detection = _detection(
            _original(tuple(corners), frame), int(class_id), score, frame, labels, options
        )
        if detection is not None:
            found.append(detection)
    return found


def _detection(
    corners: tuple[float, ...],
    class_id: int,
    score: float,
    frame: Frame,
    labels: LabelMap,
    options: DetectionOptions,
    mask: npt.NDArray[Any] | None = None,
) -> Detection | None:
    """One detection, or None when its box lies outside the image or its label is not asked for."""
    box = _clipped(corners, frame)
    label = labels.name(class_id)
    if box is None or (options.labels is not None and label not in options.labels):
        return None
    rle = None
    if mask is not None and options.masks:
        rle = paste_mask(mask, corners, frame.image_width, frame.image_height)
    return Detection(
        label=label,
        class_id=class_id,
        score=round(score, 6),
        box=box,
        box_normalized=_normalized(box, frame),
        mask=rle,
    )
