"""Detection outputs (TF Object Detection API style) -> labelled boxes in pixels.

TF OD API models answer ``detection_boxes`` as normalized
``[ymin, xmin, ymax, xmax]`` relative to *their input tensor*; the adapter
letterboxed or stretched the upload into that tensor, so each box is mapped
back through the same transform into the original image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from adapter.mapping.labels import LabelMap

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


@dataclass(frozen=True)
class DetectionOptions:
    """What to keep: ``min_score`` (default 0.5), at most ``max_results`` (default 100),
    and only the ``labels`` named (default all)."""

    min_score: float = DEFAULT_MIN_SCORE
    max_results: int = DEFAULT_MAX_RESULTS
    labels: frozenset[str] | None = None


def _pixel_box(normalized: npt.NDArray[Any], frame: Frame) -> Box | None:
    ymin, xmin, ymax, xmax = (float(v) for v in normalized)
    x0, y0 = frame.transform.to_original(xmin * frame.input_width, ymin * frame.input_height)
    x1, y1 = frame.transform.to_original(xmax * frame.input_width, ymax * frame.input_height)
    # Clip to the image: letterbox padding is not part of the picture.
    x0, x1 = (min(max(v, 0.0), float(frame.image_width)) for v in (x0, x1))
    y0, y1 = (min(max(v, 0.0), float(frame.image_height)) for v in (y0, y1))
    if x1 <= x0 or y1 <= y0:
        return None
    return Box(round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2))


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
) -> list[Detection]:
    """Turn one image's raw outputs into detections sorted by score (highest first).

    ``boxes`` is ``[K, 4]``; ``classes`` and ``scores`` are ``[K]``; only the
    first ``count`` rows are read when the model reports a count.
    """
    limit = len(scores) if count is None else max(0, min(int(count), len(scores)))
    order = np.argsort(-scores[:limit], kind="stable")
    found: list[Detection] = []
    for row in order:
        score = float(scores[row])
        if score < options.min_score or len(found) >= options.max_results:
            break
        box = _pixel_box(boxes[row], frame)
        if box is None:
            continue
        class_id = round(float(classes[row]))
        label = labels.name(class_id)
        if options.labels is not None and label not in options.labels:
            continue
        found.append(
            Detection(
                label=label,
                class_id=class_id,
                score=round(score, 6),
                box=box,
                box_normalized=_normalized(box, frame),
            )
        )
    return found
