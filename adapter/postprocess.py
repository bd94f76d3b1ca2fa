"""After the model: YOLO heads decoded and overlapping boxes suppressed, in Rust.

The work happens in the extension ``adapter._native`` with the GIL released,
on the model server's answer in place (no copy when it is float32 and
C-contiguous, as the codec returns it). :func:`nms` decides exactly as
``tf.image.non_max_suppression`` (and OpenCV's ``cv2.dnn.NMSBoxes``), class by
class: visited by score, highest first (ties: the lower index), a box is kept
unless it overlaps a kept box of its class by more than ``iou_threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from adapter import _native

__all__ = ["Kept", "YoloHead", "YoloLayout", "nms"]

YoloLayout = Literal["channels_first", "anchors_first"]
"""``[4 + C, N]`` (ultralytics v8, v11) or ``[N, 4 + C]`` (v5), one image."""


@dataclass(frozen=True)
class Kept:
    """Boxes a head kept, best first: ``boxes`` ``[K, 4]`` corners ``x0, y0, x1, y1``
    in model-input pixels, ``scores`` ``[K]`` and 0-based ``classes`` ``[K]``."""

    boxes: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    classes: npt.NDArray[np.int64]


@dataclass(frozen=True)
class YoloHead:
    """How one YOLO export lays out its raw output; compiled once per model.

    ``classes`` score columns follow ``cx, cy, w, h`` and, when ``objectness``,
    one objectness column (the v5 style; the score is then objectness times
    class score). ``normalized`` boxes are in ``0..1`` of the input, else in
    input pixels.
    """

    layout: YoloLayout
    classes: int
    objectness: bool = False
    normalized: bool = False
    _compiled: _native.YoloHead = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        compiled = _native.YoloHead(
            layout=self.layout,
            classes=self.classes,
            objectness=self.objectness,
            normalized=self.normalized,
        )
        object.__setattr__(self, "_compiled", compiled)

    @property
    def values(self) -> int:
        """Values per candidate: the box, the objectness column if any, the classes."""
        return 4 + int(self.objectness) + self.classes

    def decode(
        self,
        output: npt.NDArray[Any],
        *,
        input_size: tuple[float, float],
        min_score: float,
        iou_threshold: float,
        max_results: int,
    ) -> Kept:
        """One image's output (the batch axis dropped) -> the boxes kept.

        Candidates scoring at least ``min_score`` take part in class-aware
        suppression; at most ``max_results`` are kept. ``input_size`` is the
        model input's ``(width, height)``. ``ValueError`` if ``output`` does not
        hold a whole number of candidates.
        """
        matrix = np.ascontiguousarray(output, dtype=np.float32)
        if matrix.size % self.values:
            raise ValueError(
                f"a YOLO output of {matrix.size} values is not a whole number of "
                f"{self.values}-value candidates"
            )
        boxes, scores, classes = self._compiled.decode(
            matrix,
            input_width=float(input_size[0]),
            input_height=float(input_size[1]),
            min_score=float(min_score),
            iou_threshold=float(iou_threshold),
            max_results=int(max_results),
        )
        return Kept(boxes, scores, classes)


def nms(
    boxes: npt.ArrayLike,
    scores: npt.ArrayLike,
    classes: npt.ArrayLike | None = None,
    *,
    iou_threshold: float,
    max_results: int,
    min_score: float = float("-inf"),
) -> npt.NDArray[np.int64]:
    """The indices of the boxes kept, best first (int64).

    ``boxes`` is ``[K, 4]`` opposite corners (``x0, y0, x1, y1`` or TF's
    ``y0, x0, y1, x1``), ``scores`` ``[K]``, ``classes`` ``[K]`` integers or
    None for one class; boxes scoring below ``min_score`` are left out.
    """
    box_array = np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 4)
    score_array = np.ascontiguousarray(scores, dtype=np.float32).reshape(-1)
    class_array = (
        None if classes is None else np.ascontiguousarray(classes, dtype=np.int64).reshape(-1)
    )
    return _native.nms(
        box_array,
        score_array,
        class_array,
        iou_threshold=float(iou_threshold),
        max_results=int(max_results),
        min_score=float(min_score),
    )
